import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { rawRequest } from '../helpers/raw-http.js';

/**
 * A fuzz request as data (so that fast-check can shrink it and the report can print it), and
 * how it goes on the wire: through fetch when fetch can send it as it is, else written byte
 * by byte on a TCP connection of its own.
 */

/** JSON text inserted as is: numbers JSON.stringify cannot write (1e309, -0, 1e-400), duplicate keys. */
export class Literal {
  constructor(readonly text: string) {}
  toString() {
    return `Literal(${this.text})`;
  }
}

/** `depth` arrays or objects ({"a": ...}) around core: nesting deeper than JSON.stringify's stack allows is cheap to write. */
export class Nest {
  constructor(
    readonly depth: number,
    readonly shape: 'array' | 'object',
    readonly core: Json,
  ) {}
  toString() {
    return `Nest(${this.depth} ${this.shape}s around ${JSON.stringify(serialize(this.core)).slice(0, 60)})`;
  }
}

/** An array of `count` copies of item, written without building it. */
export class Repeat {
  constructor(
    readonly item: Json,
    readonly count: number,
  ) {}
  toString() {
    return `Repeat(${serialize(this.item).slice(0, 80)} ×${this.count})`;
  }
}

/** An object with `count` keys k0..k(count-1), each holding value. */
export class Wide {
  constructor(
    readonly count: number,
    readonly value: Json,
  ) {}
  toString() {
    return `Wide(${this.count} keys of ${serialize(this.value).slice(0, 60)})`;
  }
}

export type Json = null | boolean | number | string | Literal | Nest | Repeat | Wide | Json[] | { [key: string]: Json };

/** JSON text of a value that may hold the markers above. */
export function serialize(value: Json): string {
  if (value instanceof Literal) return value.text;
  if (value instanceof Nest) {
    const open = value.shape === 'array' ? '[' : '{"a":';
    const close = value.shape === 'array' ? ']' : '}';
    return open.repeat(value.depth) + serialize(value.core) + close.repeat(value.depth);
  }
  if (value instanceof Repeat) {
    if (value.count === 0) return '[]';
    const item = serialize(value.item);
    return `[${`${item},`.repeat(value.count - 1)}${item}]`;
  }
  if (value instanceof Wide) {
    const v = serialize(value.value);
    const parts: string[] = [];
    for (let i = 0; i < value.count; i++) parts.push(`"k${i}":${v}`);
    return `{${parts.join(',')}}`;
  }
  if (Array.isArray(value)) return `[${value.map(serialize).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}:${serialize(v)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** About how many bytes serialize(value) writes, without writing them. */
export function estimateSize(value: Json): number {
  if (value instanceof Literal) return value.text.length;
  if (value instanceof Nest) return value.depth * 6 + estimateSize(value.core);
  if (value instanceof Repeat) return value.count * (estimateSize(value.item) + 1) + 2;
  if (value instanceof Wide) return value.count * (estimateSize(value.value) + 10) + 2;
  if (Array.isArray(value)) return value.reduce<number>((n, v) => n + estimateSize(v) + 1, 2);
  if (value !== null && typeof value === 'object') return Object.entries(value).reduce((n, [k, v]) => n + k.length * 6 + estimateSize(v) + 4, 2);
  if (typeof value === 'string') return value.length * 6 + 2;
  return 24;
}

export type Body =
  | { kind: 'json'; value: Json }
  /** UTF-8 text that need not be JSON. */
  | { kind: 'text'; text: string }
  /** Bytes as hex: invalid UTF-8, UTF-16, Latin-1. */
  | { kind: 'bytes'; hex: string; note: string };

export type QueryPart = { name: string; value: string } | { raw: string };

export type Wire =
  | { via: 'fetch' }
  /**
   * length: Content-Length; chunked: Transfer-Encoding: chunked; none: neither, and no body
   * bytes (the body a client forgot); short: a Content-Length one byte under the body.
   */
  | { via: 'raw'; framing: 'length' | 'chunked' | 'none' | 'short'; omitHost?: boolean; http10?: boolean; latin1Head?: boolean }
  /** A whole request written by hand; {host} stands for the server's host:port. */
  | { via: 'bytes'; text: string; note: string; expect?: number[] };

export interface FuzzRequest {
  /** The operation the request was built from, or what kind of oddity it is. */
  from: string;
  /** The mutations applied to a valid request, for the report. */
  mutations: string[];
  method: string;
  path: string;
  query: QueryPart[];
  /** Besides Host, Connection and the framing headers, which the wire adds. */
  headers: Array<[string, string]>;
  body?: Body;
  /** Compress the body bytes (Content-Encoding is a header of its own, so a label can lie). */
  compress?: 'gzip' | 'deflate' | 'br';
  wire: Wire;
}

const UNRESERVED = /[A-Za-z0-9\-_.~]/;

/**
 * Percent-encodes every UTF-16 unit as UTF-8 would, lone surrogates included (as the
 * three bytes WTF-8 gives them), where encodeURIComponent would throw.
 */
export function encodeQueryValue(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (UNRESERVED.test(ch)) {
      out += ch;
      continue;
    }
    let cp = s.charCodeAt(i);
    const next = s.charCodeAt(i + 1);
    if (cp >= 0xd800 && cp <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      cp = 0x10000 + ((cp - 0xd800) << 10) + (next - 0xdc00);
      i++;
    }
    const bytes =
      cp < 0x80
        ? [cp]
        : cp < 0x800
          ? [0xc0 | (cp >> 6), 0x80 | (cp & 63)]
          : cp < 0x10000
            ? [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63)]
            : [0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63)];
    for (const b of bytes) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function target(req: FuzzRequest): string {
  const parts = req.query.map((p) => ('raw' in p ? p.raw : `${encodeQueryValue(p.name)}=${encodeQueryValue(p.value)}`));
  return parts.length === 0 ? req.path : `${req.path}?${parts.join('&')}`;
}

export function bodyBytes(req: FuzzRequest): Buffer | undefined {
  if (!req.body) return undefined;
  const plain =
    req.body.kind === 'json'
      ? Buffer.from(serialize(req.body.value), 'utf8')
      : req.body.kind === 'text'
        ? Buffer.from(req.body.text, 'utf8')
        : Buffer.from(req.body.hex, 'hex');
  switch (req.compress) {
    case 'gzip':
      return gzipSync(plain);
    case 'deflate':
      return deflateSync(plain);
    case 'br':
      return brotliCompressSync(plain);
    default:
      return plain;
  }
}

/** What the server receives, as the oracle judges it. */
export interface Rendered {
  method: string;
  target: string;
  /** Every header as sent, in order (Host, Connection and framing included). */
  headers: Array<[string, string]>;
  body: Buffer | undefined;
  /** Whether the body bytes reach the server as the body. */
  bodySent: boolean;
  wire: Wire;
}

// fetch refuses these methods and headers, or sets the headers itself.
const FETCH_METHODS = /^(GET|POST|PUT|PATCH|DELETE|OPTIONS)$/;
const FETCH_OWN_HEADERS = /^(host|connection|content-length|transfer-encoding|expect|keep-alive|te|trailer|upgrade)$/i;

/** The wire a request really takes: fetch only when fetch sends exactly what the request says. */
export function effectiveWire(req: FuzzRequest): Wire {
  if (req.wire.via !== 'fetch') return req.wire;
  const fetchable =
    FETCH_METHODS.test(req.method) &&
    !(req.body && (req.method === 'GET' || req.method === 'HEAD')) &&
    req.headers.every(([name, value]) => !FETCH_OWN_HEADERS.test(name) && /^[\t\x20-\x7e]*$/.test(value) && /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) &&
    new Set(req.headers.map(([n]) => n.toLowerCase())).size === req.headers.length &&
    /^\/[\x21-\x7e]*$/.test(req.path) &&
    !/(^|\/)\.\.?(\/|$)|\/\/|%2e/i.test(req.path) &&
    req.query.every((p) => !('raw' in p) || /^[\x21-\x7e]*$/.test(p.raw));
  return fetchable ? req.wire : { via: 'raw', framing: 'length' };
}

/**
 * Stands for a fresh key in a header value (an Idempotency-Key): render() puts one never sent
 * before in its place, so that sending a request again (fast-check replays and shrinks) is no
 * repeat of its key, which the server would answer with the first answer or a 422.
 */
export const FRESH = '{fresh}';
let freshKeys = 0;

export function render(req: FuzzRequest, host: string): Rendered {
  const wire = effectiveWire(req);
  const body = bodyBytes(req);
  if (wire.via === 'bytes') {
    return { method: req.method, target: req.path, headers: [], body: undefined, bodySent: false, wire };
  }
  const headers: Array<[string, string]> = [];
  if (wire.via === 'fetch' || !wire.omitHost) headers.push(['Host', host]);
  for (const [name, value] of req.headers) headers.push([name, value.includes(FRESH) ? value.replaceAll(FRESH, `k${process.pid}.${++freshKeys}`) : value]);
  let bodySent = body !== undefined;
  if (wire.via === 'raw') {
    headers.push(['Connection', 'close']);
    if (body !== undefined) {
      if (wire.framing === 'length') headers.push(['Content-Length', String(body.length)]);
      else if (wire.framing === 'short') headers.push(['Content-Length', String(Math.max(0, body.length - 1))]);
      else if (wire.framing === 'chunked') headers.push(['Transfer-Encoding', 'chunked']);
      else bodySent = false;
    }
  } else if (body !== undefined) {
    headers.push(['Content-Length', String(body.length)]);
  }
  return { method: req.method, target: target(req), headers, body, bodySent, wire };
}

/** Jobs a request names in its body, whatever it was sent to: the ones it could have stored. */
export function namedJobs(req: FuzzRequest): Array<{ queue: string; id: string }> {
  if (!req.body) return [];
  let text: string;
  try {
    text =
      req.body.kind === 'json'
        ? serialize(req.body.value)
        : req.body.kind === 'text'
          ? req.body.text
          : new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(req.body.hex, 'hex'));
  } catch {
    return [];
  }
  if (text.length > 2_000_000) return [];
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return [];
  }
  const out: Array<{ queue: string; id: string }> = [];
  for (const v of Array.isArray(value) ? value.slice(0, 10_000) : [value]) {
    if (v && typeof v === 'object' && typeof (v as any).queue === 'string' && typeof (v as any).id === 'string') out.push({ queue: (v as any).queue, id: (v as any).id });
  }
  return out;
}

export interface Answer {
  status: number;
  headers: Record<string, string>;
  text: string;
  ms: number;
}

function rawBytes(r: Rendered, host: string): Buffer {
  if (r.wire.via === 'bytes') return Buffer.from(r.wire.text.replaceAll('{host}', host), 'latin1');
  const wire = r.wire as Extract<Wire, { via: 'raw' }>;
  const head = `${r.method} ${r.target} HTTP/${wire.http10 ? '1.0' : '1.1'}\r\n${r.headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
  // latin1: a header value's characters up to U+00FF as single bytes, which need not be UTF-8.
  const parts: Buffer[] = [Buffer.from(head, wire.latin1Head ? 'latin1' : 'utf8')];
  if (r.body !== undefined && r.bodySent) {
    if (wire.framing === 'chunked') {
      // Two chunks, so that a body split across reads is exercised too.
      const cut = Math.floor(r.body.length / 2);
      for (const piece of [r.body.subarray(0, cut), r.body.subarray(cut)]) {
        if (piece.length > 0) parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'));
      }
      parts.push(Buffer.from('0\r\n\r\n'));
    } else {
      parts.push(r.body);
    }
  }
  return Buffer.concat(parts);
}

/** Sends a rendered request; throws when no answer comes within timeoutMs. */
export async function send(baseUrl: string, r: Rendered, timeoutMs: number): Promise<Answer> {
  const started = performance.now();
  if (r.wire.via === 'fetch') {
    const headers = new Headers();
    for (const [k, v] of r.headers) if (!/^(host|content-length)$/i.test(k)) headers.append(k, v);
    const res = await fetch(new URL(r.target, baseUrl), {
      method: r.method,
      headers,
      body: r.body === undefined ? undefined : new Uint8Array(r.body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    return { status: res.status, headers: Object.fromEntries(res.headers), text, ms: performance.now() - started };
  }
  const host = new URL(baseUrl).host;
  const res = await rawRequest(baseUrl, rawBytes(r, host), timeoutMs);
  if (!Number.isInteger(res.status)) throw new Error(`the connection closed without an answer (${res.body.length} bytes came back)`);
  return { status: res.status, headers: res.headers, text: res.body, ms: performance.now() - started };
}

const clip = (s: string, n = 400) => (s.length <= n ? s : `${s.slice(0, n / 2)}…(${s.length} chars)…${s.slice(-n / 4)}`);

function describeBody(req: FuzzRequest): string {
  const b = req.body;
  if (!b) return '';
  if (b.kind === 'json') {
    const markers: string[] = [];
    const walk = (v: Json): void => {
      if (v instanceof Literal || v instanceof Nest || v instanceof Repeat || v instanceof Wide) markers.push(String(v));
      if (v instanceof Nest) walk(v.core);
      else if (v instanceof Repeat) walk(v.item);
      else if (Array.isArray(v)) v.forEach(walk);
      else if (v !== null && typeof v === 'object' && !(v instanceof Literal) && !(v instanceof Wide)) Object.values(v).forEach(walk);
    };
    walk(b.value);
    const text = serialize(b.value);
    return `${clip(JSON.stringify(text).slice(1, -1))}${markers.length ? `\n    (where ${markers.join('; ')})` : ''}`;
  }
  if (b.kind === 'text') return clip(JSON.stringify(b.text).slice(1, -1));
  return `<bytes ${clip(b.hex, 200)}: ${b.note}>`;
}

/** The request as a reader of the report needs it to reproduce it. */
export function describe(req: FuzzRequest, host = '127.0.0.1:PORT'): string {
  const r = render(req, host);
  const via = r.wire.via === 'fetch' ? 'fetch' : r.wire.via === 'raw' ? `raw TCP, ${r.wire.framing} framing${r.wire.omitHost ? ', no Host' : ''}${r.wire.http10 ? ', HTTP/1.0' : ''}` : `raw TCP bytes (${r.wire.note})`;
  const lines = [`  from ${req.from}${req.mutations.length ? `, mutated: ${req.mutations.join('; ')}` : ''} (${via})`];
  if (r.wire.via === 'bytes') {
    lines.push(`  ${clip(JSON.stringify(r.wire.text).slice(1, -1), 600)}`);
    return lines.join('\n');
  }
  lines.push(`  ${r.method} ${clip(r.target, 600)}`);
  for (const [k, v] of r.headers) lines.push(`  ${k}: ${clip(v, 200)}`);
  if (req.compress) lines.push(`  (body ${req.compress}-compressed)`);
  if (req.body) lines.push(`  ${describeBody(req)}`);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Regression cases: a request as JSON text, to paste into regressions.ts

type Encoded = null | boolean | number | string | Encoded[] | { [key: string]: Encoded };

function encodeJson(v: Json): Encoded {
  if (v instanceof Literal) return { $literal: v.text };
  if (v instanceof Nest) return { $nest: [v.depth, v.shape, encodeJson(v.core)] };
  if (v instanceof Repeat) return { $repeat: [encodeJson(v.item), v.count] };
  if (v instanceof Wide) return { $wide: [v.count, encodeJson(v.value)] };
  if (Array.isArray(v)) return v.map(encodeJson);
  if (v !== null && typeof v === 'object') return { $object: Object.fromEntries(Object.entries(v).map(([k, x]) => [k, encodeJson(x)])) };
  return v;
}

function decodeJson(v: Encoded): Json {
  if (Array.isArray(v)) return v.map(decodeJson);
  if (v === null || typeof v !== 'object') return v;
  if ('$literal' in v) return new Literal(v.$literal as string);
  if ('$nest' in v) {
    const [depth, shape, core] = v.$nest as [number, 'array' | 'object', Encoded];
    return new Nest(depth, shape, decodeJson(core));
  }
  if ('$repeat' in v) {
    const [item, count] = v.$repeat as [Encoded, number];
    return new Repeat(decodeJson(item), count);
  }
  if ('$wide' in v) {
    const [count, value] = v.$wide as [number, Encoded];
    return new Wide(count, decodeJson(value));
  }
  return Object.fromEntries(Object.entries(v.$object as Record<string, Encoded>).map(([k, x]) => [k, decodeJson(x)]));
}

/** The request as JSON text, the run's queue prefix written as {q}: what a regression case holds. */
export function toRegression(req: FuzzRequest, prefix: string): string {
  const body = req.body?.kind === 'json' ? { kind: 'json', value: encodeJson(req.body.value) } : req.body;
  return JSON.stringify({ ...req, body }).replaceAll(prefix, '{q}');
}

/** A request from toRegression()'s text, {q} replaced by prefix. */
export function fromRegression(text: string, prefix: string): FuzzRequest {
  const req = JSON.parse(text.replaceAll('{q}', prefix)) as FuzzRequest & { body?: { kind: string; value?: Encoded } };
  if (req.body?.kind === 'json') return { ...req, body: { kind: 'json', value: decodeJson(req.body.value as Encoded) } };
  return req as FuzzRequest;
}
