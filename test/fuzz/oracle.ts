import { METHODS } from 'node:http';
import querystring from 'node:querystring';
import { Contract } from '../../conformance/src/contract.js';
import { specPath } from '../../server/src/http/contract.js';
import { declared, routeOf, type Operation, type Schema } from './spec.js';
import type { Answer, Rendered } from './wire.js';

/**
 * What the contract says a request deserves, decided from the request as it goes on the wire,
 * and the checks every answer must pass whatever the request was.
 *
 * The verdict is three-valued on purpose: "ok" (the request is valid by openapi.yaml and the
 * limits its description states, so no 400, 413, 415 or 422), "refused" with the statuses the
 * broken rules call for, or "unknown" where the contract leaves the answer open (a path that
 * differs from the document only by case, a header Node itself may refuse); unknown requests
 * are held to the general checks only.
 */

export interface Limits {
  maxBody: number;
  maxJsonDepth: number;
  /** The most entries a 400's `errors` list carries (openapi.yaml's description). */
  maxFieldErrors: number;
  /** The most bytes of UTF-8 a job's queue and id take together (JobId's description). */
  maxKeyBytes: number;
  /** Node's limit on the request line and headers together. */
  maxHeaderBytes: number;
}

export type Verdict = { kind: 'ok'; health: boolean } | { kind: 'refused'; statuses: Set<number>; reasons: string[] } | { kind: 'unknown'; why: string };

class Findings {
  statuses = new Set<number>();
  reasons: string[] = [];
  unknown: string | undefined;
  refuse(status: number, reason: string) {
    this.statuses.add(status);
    this.reasons.push(`${status}: ${reason}`);
  }
  unsure(why: string) {
    this.unknown ??= why;
  }
  /** A violation() answer: a 400, or open when it says so. */
  violated(why: string | undefined) {
    if (why === undefined) return;
    if (why.startsWith(UNSURE)) this.unsure(why.slice(UNSURE.length));
    else this.refuse(400, why);
  }
}

// --- JSON values ------------------------------------------------------------------------

const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Deepest nesting of containers (the outermost is level 1), and whether every string, key and number can be stored. */
export function inspectJson(root: unknown): { depth: number; unstorable?: string } {
  let depth = 0;
  let unstorable: string | undefined;
  const stack: Array<[unknown, number]> = [[root, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (typeof v === 'string') {
      if (UNSTORABLE.test(v)) unstorable ??= 'a string with NUL or a lone surrogate';
    } else if (typeof v === 'number') {
      if (!Number.isFinite(v)) unstorable ??= 'a number that is not finite';
    } else if (typeof v === 'object' && v !== null) {
      depth = Math.max(depth, d);
      if (Array.isArray(v)) for (const x of v) stack.push([x, d + 1]);
      else
        for (const [k, x] of Object.entries(v)) {
          if (UNSTORABLE.test(k)) unstorable ??= 'a key with NUL or a lone surrogate';
          stack.push([x, d + 1]);
        }
    }
  }
  return { depth, unstorable };
}

// --- RFC 3339, as openapi.yaml's RunAt describes it ---------------------------------------

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

function daysIn(year: number, month: number): number {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] ?? 0;
}

/** A run_at text as UTC milliseconds since the epoch plus the microseconds past them, or why it is refused. */
export function readRunAt(text: string): { ms: number; micros: number } | { refused: string } | { unsure: string } {
  const m = RFC3339.exec(text);
  if (!m) return { refused: 'not RFC 3339 with an offset' };
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo)) return { refused: 'no such date' };
  if (h > 23 || mi > 59 || s > 60) return { refused: 'no such time' };
  const sign = m[9] === '-' ? -1 : 1;
  const oh = Number(m[10] ?? 0);
  const om = Number(m[11] ?? 0);
  if (oh > 23 || om > 59) return { refused: 'an offset past ±23:59' };
  const offset = sign * (oh * 60 + om);
  // A leap second: the validator's date-time format takes it only as the local 23:59:60.
  if (s === 60 && !(h === 23 && mi === 59)) return { refused: 'a leap second that is not 23:59:60' };
  if (s === 60 && offset !== 0) return { unsure: 'a leap second with an offset' };
  const day = new Date(0);
  day.setUTCFullYear(y, mo - 1, d);
  const ms = day.getTime() + ((h * 60 + mi - offset) * 60 + s) * 1000;
  const digits = (m[7] ?? '').slice(0, 6).padEnd(6, '0');
  const fractionMs = Number(digits.slice(0, 3));
  const utc = new Date(ms + fractionMs);
  const year = utc.getUTCFullYear();
  if (year < 1 || year > 9999) return { refused: 'outside 0001-9999 in UTC' };
  return { ms: ms + fractionMs, micros: Number(digits.slice(3)) };
}

// --- schemas ------------------------------------------------------------------------------

const codePoints = (s: string) => [...s].length;

/** Starts a violation() answer that means "the contract leaves it open", not "refused". */
export const UNSURE = '?';

/** Why value breaks schema (the subset of JSON Schema openapi.yaml uses), or undefined. */
export function violation(schema: Schema, value: unknown, at = ''): string | undefined {
  if (schema.enum && !schema.enum.some((e) => e === value)) return `${at} not in enum`;
  switch (schema.type) {
    case 'string': {
      if (typeof value !== 'string') return `${at} not a string`;
      if (schema.minLength !== undefined && codePoints(value) < schema.minLength) return `${at} too short`;
      if (schema.maxLength !== undefined && codePoints(value) > schema.maxLength) return `${at} too long`;
      if (schema.pattern && !new RegExp(schema.pattern, 'u').test(value)) return `${at} does not match its pattern`;
      if (schema.format === 'date-time') {
        const r = readRunAt(value);
        if ('refused' in r) return `${at} ${r.refused}`;
        if ('unsure' in r) return `${UNSURE}${at} ${r.unsure}`;
      }
      return undefined;
    }
    case 'integer':
    case 'number': {
      if (typeof value !== 'number') return `${at} not a number`;
      if (schema.type === 'integer' && !Number.isInteger(value)) return `${at} not an integer`;
      if (schema.minimum !== undefined && value < schema.minimum) return `${at} under its minimum`;
      if (schema.maximum !== undefined && value > schema.maximum) return `${at} over its maximum`;
      return undefined;
    }
    case 'boolean':
      return typeof value === 'boolean' ? undefined : `${at} not a boolean`;
    case 'array': {
      if (!Array.isArray(value)) return `${at} not an array`;
      if (schema.maxItems !== undefined && value.length > schema.maxItems) return `${at} over maxItems`;
      for (let i = 0; i < value.length; i++) {
        const v = violation(schema.items ?? {}, value[i], `${at}/${i}`);
        if (v) return v;
      }
      return undefined;
    }
    case 'object': {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return `${at} not an object`;
      const obj = value as Record<string, unknown>;
      for (const key of schema.required ?? []) if (!Object.hasOwn(obj, key)) return `${at}/${key} missing`;
      for (const [key, v] of Object.entries(obj)) {
        const s = schema.properties && Object.hasOwn(schema.properties, key) ? schema.properties[key] : undefined;
        if (!s) {
          if (schema.additionalProperties === false) return `${at}/${key} not allowed`;
          continue;
        }
        const why = violation(s, v, `${at}/${key}`);
        if (why) return why;
      }
      return undefined;
    }
    default:
      return undefined;
  }
}

// --- requests -----------------------------------------------------------------------------

const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/** A templated path's parameters, percent-decoded, against their schemas. */
function judgePath(op: Operation, raw: string[], f: Findings): void {
  op.pathParams.forEach((p, i) => {
    let value: string;
    try {
      value = decodeURIComponent(raw[i]!);
    } catch {
      return f.refuse(400, `path parameter ${p.name} is not valid percent-encoded UTF-8`);
    }
    f.violated(violation(p.schema, value, `/path/${p.name}`));
  });
}

function judgeQuery(op: Operation, rawQuery: string, limits: Limits, f: Findings): void {
  const query = querystring.parse(rawQuery);
  const declaredNames = new Set(op.query.map((p) => p.name));
  for (const name of Object.keys(query)) if (!declaredNames.has(name)) f.refuse(400, `unknown query parameter ${JSON.stringify(name)}`);
  for (const p of op.query) {
    const value = query[p.name];
    if (value === undefined) {
      if (p.required) f.refuse(400, `${p.name} is missing`);
      continue;
    }
    if (Array.isArray(value)) {
      f.refuse(400, `${p.name} is repeated`);
      continue;
    }
    if (p.schema.type === 'integer' || p.schema.type === 'number') {
      if (/^\s|\s$/.test(value)) {
        f.unsure(`${p.name} has white space around it`);
        continue;
      }
      const n = Number(value);
      if (!NUMBER.test(value) || !Number.isFinite(n)) {
        f.refuse(400, `${p.name}=${value} is not a finite number`);
        continue;
      }
      f.violated(violation(p.schema, n, `/query/${p.name}`));
      continue;
    }
    f.violated(violation(p.schema, value, `/query/${p.name}`));
  }
  // A cursor is opaque: only the server knows which ones it gave (and for which status).
  if (op.id === 'listJobs' && typeof query.cursor === 'string') f.unsure('a page cursor the server may not have given');
  // A job's key named in the query (queue, job_id): JobId's description promises the 400.
  const keyBytes = op.query
    .filter((p) => isKeyPart(p.schema))
    .reduce((sum, p) => sum + (typeof query[p.name] === 'string' ? Buffer.byteLength(query[p.name] as string) : 0), 0);
  if (keyBytes > limits.maxKeyBytes) f.refuse(400, 'queue and id over the key limit');
}

/** Whether a schema is a part of a job's key: a QueueName or a JobId, wherever it appears. */
function isKeyPart(schema: Schema | undefined): boolean {
  return schema?.$name === 'QueueName' || schema?.$name === 'JobId';
}

/** The request headers op declares (Idempotency-Key, traceparent), against their schemas. */
function judgeHeaders(op: Operation, r: Rendered, f: Findings): void {
  for (const p of op.headers) {
    const values = header(r, p.name.toLowerCase());
    if (values.length !== 1) continue;
    const value = values[0]!;
    // Node trims a value's surrounding white space, and an empty one may count as absent.
    if (value.trim() !== value || value === '') f.unsure(`${p.name} with surrounding white space or empty`);
    else f.violated(violation(p.schema, value, `/header/${p.name}`));
  }
}

const FINE_TYPES = /^application\/json(\s*;\s*charset\s*=\s*"?utf-8"?)?$/i;
const REFUSED_TYPES = /^(?!application\/json\s*(;|$))|charset\s*=\s*"?(?!utf-8)/i;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

function header(r: Rendered, name: string): string[] {
  return r.headers.filter(([k]) => k.toLowerCase() === name).map(([, v]) => v);
}

function judgeBody(op: Operation, r: Rendered, limits: Limits, f: Findings): void {
  if (!op.body) return;
  const [encoding] = header(r, 'content-encoding');
  if (encoding !== undefined && encoding.trim() !== '' && encoding.trim().toLowerCase() !== 'identity') f.refuse(415, `Content-Encoding ${encoding}`);
  const length = header(r, 'content-length');
  if (length.length > 0 && Number(length[0]) > limits.maxBody) f.refuse(413, 'a Content-Length over the limit');
  const bytes = r.bodySent ? (r.body ?? Buffer.alloc(0)) : Buffer.alloc(0);
  if (bytes.length === 0) {
    if (op.body.required) f.refuse(400, 'no body');
    return;
  }
  if (bytes.length > limits.maxBody) f.refuse(413, 'a body over the limit');
  const types = header(r, 'content-type');
  if (types.length > 1) return f.unsure('two Content-Types');
  const type = types[0];
  if (type === undefined) f.refuse(415, 'no Content-Type');
  else if (!FINE_TYPES.test(type)) {
    if (REFUSED_TYPES.test(type.trim()) || type.trim() === '') f.refuse(415, `Content-Type ${type}`);
    else f.unsure(`Content-Type ${type}`);
  }
  if (f.statuses.has(415)) return;
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(bytes));
  } catch {
    f.refuse(400, 'the body is not JSON in UTF-8');
    return;
  }
  const schema = op.body.schema;
  if (schema.type === 'array' && schema.maxItems !== undefined && Array.isArray(value) && value.length > schema.maxItems) {
    f.refuse(400, `${value.length} items, over maxItems`);
    return;
  }
  const { depth, unstorable } = inspectJson(value);
  if (depth > limits.maxJsonDepth) f.refuse(400, `JSON nested ${depth} levels deep`);
  if (unstorable) f.refuse(400, unstorable);
  f.violated(violation(schema, value, '/body'));
  // A job's key (the fields that are a QueueName or a JobId: NewJob, RescheduleRequest, JobRef),
  // alone or in a batch.
  const element = schema.type === 'array' ? schema.items : schema;
  const keyFields = Object.entries(element?.properties ?? {}).filter(([, s]) => isKeyPart(s)).map(([name]) => name);
  const jobs = Array.isArray(value) ? value : [value];
  for (const job of jobs) {
    if (job && typeof job === 'object' && !Array.isArray(job)) {
      const bytes = keyFields.reduce((sum, name) => sum + (typeof job[name] === 'string' ? Buffer.byteLength(job[name]) : 0), 0);
      if (bytes > limits.maxKeyBytes) {
        f.refuse(400, 'queue and id over the key limit');
        // JobId's description promises the 400 for any such key; where the job must already
        // exist (reschedule), "no such job" is an answer the contract does not rule out.
        if (op.id === 'reschedule') f.statuses.add(404);
      }
    }
  }
}

const NODE_CONTINUE = /(?:^|\W)100-continue(?:$|\W)/i;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export function judge(r: Rendered, limits: Limits): Verdict {
  if (r.wire.via === 'bytes') {
    const expected = r.wire.expect;
    return expected ? { kind: 'refused', statuses: new Set(expected), reasons: [r.wire.note] } : { kind: 'unknown', why: r.wire.note };
  }
  const f = new Findings();
  if (r.wire.via === 'raw' && r.wire.framing === 'short') f.unsure('a Content-Length under the body');
  const counts = new Map<string, number>();
  for (const [k] of r.headers) counts.set(k.toLowerCase(), (counts.get(k.toLowerCase()) ?? 0) + 1);
  for (const [k, n] of counts) if (n > 1) f.unsure(`${k} sent ${n} times`);
  for (const [k, v] of r.headers) {
    if (!TOKEN.test(k) || /[^\t\x20-\x7e]/.test(v)) f.unsure(`header ${JSON.stringify(k)} is not plain ASCII`);
    if (/^(transfer-encoding)$/i.test(k) && !/^chunked$/i.test(v)) f.unsure(`Transfer-Encoding: ${v}`);
    if (/^content-length$/i.test(k) && !(/^\d+$/.test(v) && Number(v) <= Number.MAX_SAFE_INTEGER)) f.unsure(`Content-Length: ${v}`);
  }
  // What Node's parser refuses comes first, in the order it finds it: the method, the size of
  // the header section, the framing, then Expect.
  const node = (status: number, reason: string): Verdict => (f.unknown ? { kind: 'unknown', why: f.unknown } : { kind: 'refused', statuses: new Set([status]), reasons: [reason] });
  if (!METHODS.includes(r.method)) return node(400, `method ${r.method}`);
  const headBytes = Buffer.byteLength(`${r.method} ${r.target} HTTP/1.1\r\n${r.headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
  if (headBytes > limits.maxHeaderBytes + 512) return node(431, `a ${headBytes}-byte header section`);
  if (headBytes > limits.maxHeaderBytes - 512) f.unsure('a header section near the limit');
  if (counts.has('content-length') && counts.has('transfer-encoding')) return node(400, 'both Content-Length and Transfer-Encoding');
  const [expect] = header(r, 'expect');
  const http10 = r.wire.via === 'raw' && r.wire.http10;
  if (expect !== undefined && !NODE_CONTINUE.test(expect)) {
    if (http10) f.unsure('Expect on HTTP/1.0');
    else if (expect.trim() === '') f.unsure('an empty Expect');
    else return node(417, `Expect: ${expect}`);
  }
  // The origin guard (http/origin-guard.ts) runs before any route: a browser's request from
  // another origin is refused whatever it asks for (no origin is allowed on the fuzzed server).
  const [origin] = header(r, 'origin');
  const [host] = header(r, 'host');
  const [site] = header(r, 'sec-fetch-site');
  if (origin !== undefined && origin !== `http://${host}`) return node(403, `Origin: ${origin}`);
  if (origin === undefined && site !== undefined && /^(cross-site|same-site)$/i.test(site.trim())) return node(403, `Sec-Fetch-Site: ${site}`);
  const q = r.target.indexOf('?');
  const path = q < 0 ? r.target : r.target.slice(0, q);
  const rawQuery = q < 0 ? '' : r.target.slice(q + 1);
  const { op, pathKnown, variant, params } = routeOf(r.method, path);
  // A path that differs from the document's only by case or a trailing slash is no path of it.
  if (!pathKnown) f.refuse(404, variant ? `${path} is not ${path.toLowerCase()}: paths are exact` : `no path ${path}`);
  else if (!op) f.refuse(405, `${r.method} on ${path}`);
  else {
    if (op.pathParams.length === 0 && op.path !== path) f.unsure(`${path} is ${op.path} but for case or a trailing slash`);
    judgePath(op, params, f);
    judgeQuery(op, rawQuery, limits, f);
    judgeHeaders(op, r, f);
    judgeBody(op, r, limits, f);
  }
  if (f.unknown) return { kind: 'unknown', why: f.unknown };
  if (f.statuses.size > 0) return { kind: 'refused', statuses: f.statuses, reasons: f.reasons };
  return { kind: 'ok', health: op?.id === 'health' };
}

// --- answers ------------------------------------------------------------------------------

/** Things an error detail must not show: the database's words, SQL, stack frames. */
const LEAKS = /invalid byte sequence|invalid input syntax|violates|SQLSTATE|\bsyntax error\b|\brelation\b|\bcolumn\b|\bjsonb?\b.*\bunsupported\b|node_modules|\.[jt]s:\d+|\bat \S+ \(|TypeError|RangeError|ReferenceError|Cannot read propert/i;

// 403: the origin guard answers before any route, on every path (openapi.yaml's Problem response).
const STATUSES_WITHOUT_OPERATION = new Set([400, 403, 404, 405, 408, 413, 415, 417, 431]);
const OK_STATUSES = new Set([200, 202, 204, 404, 409]);

/** Every way the answer breaks the contract; empty when it keeps it. */
export function check(r: Rendered, answer: Answer, verdict: Verdict, limits: Limits): string[] {
  const problems: string[] = [];
  const { status } = answer;
  if (status >= 500) problems.push(`a ${status}`);
  const q = r.target.indexOf('?');
  const { op } = routeOf(r.method, q < 0 ? r.target : r.target.slice(0, q));
  const isHead = r.method === 'HEAD';
  if (op) {
    const spec = declared(op, status);
    if (!spec) problems.push(`${status} is not declared for ${op.id}`);
    else if (status < 300 && !isHead) {
      const type = answer.headers['content-type'] ?? '';
      if (spec.media.length === 0 && answer.text.length > 0) problems.push(`${status} of ${op.id} declares no body but has one`);
      if (spec.media.length > 0 && !spec.media.some((media) => type.toLowerCase().startsWith(media))) problems.push(`${status} of ${op.id} is ${type || 'untyped'}, not ${spec.media.join(' or ')}`);
    }
  } else if (status >= 400 && !STATUSES_WITHOUT_OPERATION.has(status)) {
    problems.push(`${status} for a request that reaches no operation`);
  } else if (status < 400) {
    problems.push(`${status} for a request that reaches no operation`);
  }
  if (status >= 400 && !isHead) problems.push(...problemDetails(answer, limits));
  if (verdict.kind === 'ok') {
    if (verdict.health ? status !== 200 : !OK_STATUSES.has(status)) problems.push(`${status} for a request valid by openapi.yaml`);
  } else if (verdict.kind === 'refused' && !verdict.statuses.has(status)) {
    problems.push(`${status} where openapi.yaml calls for ${[...verdict.statuses].join(' or ')} (${verdict.reasons.slice(0, 3).join('; ')})`);
  }
  return problems;
}

function problemDetails(answer: Answer, limits: Limits): string[] {
  const out: string[] = [];
  const type = answer.headers['content-type'] ?? '';
  if (!/^application\/problem\+json/i.test(type)) out.push(`a ${answer.status} that is ${type || 'untyped'}, not application/problem+json`);
  if (answer.text.length > 64 * 1024) out.push(`a ${answer.text.length}-character problem body`);
  let body: any;
  try {
    body = JSON.parse(answer.text);
  } catch {
    out.push(`a ${answer.status} whose body is not JSON: ${JSON.stringify(answer.text.slice(0, 100))}`);
    return out;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return [...out, 'a problem that is not an object'];
  for (const member of ['type', 'title', 'detail']) if (typeof body[member] !== 'string') out.push(`a problem without a string ${member}`);
  if (body.status !== answer.status) out.push(`a problem whose status ${body.status} is not the answer's ${answer.status}`);
  if (body.errors !== undefined) {
    if (!Array.isArray(body.errors)) out.push('a problem whose errors is not a list');
    else {
      if (body.errors.length > limits.maxFieldErrors) out.push(`a problem listing ${body.errors.length} errors`);
      if (!body.errors.every((e: any) => typeof e?.path === 'string' && typeof e?.message === 'string')) out.push('a problem error without path and message');
    }
  }
  // Values the server quotes back from the request are left out: they may say anything.
  const own = String(body.detail ?? '').replace(/"(?:[^"\\]|\\.)*"/g, '""');
  if (LEAKS.test(own)) out.push(`a detail that leaks internals: ${String(body.detail).slice(0, 200)}`);
  return out;
}

/** openapi.yaml as the conformance kit judges answers by it: independent of the server's own validation. */
const contract = new Contract(specPath());

/** Why an answer breaks openapi.yaml (status, Content-Type, body schema, declared headers), judged for the operation the request reaches (none: it must be a problem). */
export function breaches(method: string, target: string, answer: { status: number; headers: Headers | Record<string, string>; text: string }): string[] {
  const { op } = routeOf(method, target.split('?')[0]!);
  const headers = answer.headers instanceof Headers ? answer.headers : new Headers(Object.entries(answer.headers).filter(([, v]) => /^[\t\x20-\x7e]*$/.test(v)));
  return contract.check(op?.id, { method, status: answer.status, headers, text: answer.text }).map((p) => `openapi.yaml: ${p}`);
}
