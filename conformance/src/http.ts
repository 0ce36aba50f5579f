import type { Contract } from './contract.js';
import { CaseFailure } from './expect.js';

/**
 * The kit's one way to talk to a server: every request names the operation of openapi.yaml it
 * is meant for (or none, for a path the document does not have), and every answer is checked
 * against what the document declares for it before a case sees it. A case can therefore never
 * pass on an answer the contract does not allow, whatever the case itself looks at.
 */

export interface Request {
  /** The operationId of openapi.yaml; its method and path come from the document. */
  op?: string;
  /** Overrides: for requests the document has no operation for (a wrong method, no such path). */
  method?: string;
  path?: string;
  /** Values of the path's `{templates}`, percent-encoded here. */
  params?: Record<string, string>;
  query?: Record<string, string | number | undefined>;
  /** Sent as JSON, with `Content-Type: application/json`. */
  json?: unknown;
  /** Sent as is, with the headers you give. */
  body?: string;
  headers?: Record<string, string>;
  /** Leave the bearer token out (the auth cases). */
  noToken?: boolean;
  /** Added to the request timeout: how long the server may rightly hold it (a long poll's wait). */
  holdMs?: number;
}

export interface Response {
  status: number;
  headers: Headers;
  text: string;
  /** Parsed JSON when the answer is JSON, else undefined. */
  body: any;
  /** From the request's start to the last byte of the answer. */
  ms: number;
}

export interface SessionOptions {
  baseUrl: string;
  token?: string;
  requestTimeoutMs: number;
}

export class Session {
  /** Requests sent, over every case (for the summary). */
  static requests = 0;

  constructor(
    readonly contract: Contract,
    readonly options: SessionOptions,
  ) {}

  /** The request and its validated answer; a transport error or an answer the contract does not allow fails the case. */
  async send(req: Request): Promise<Response> {
    const op = req.op === undefined ? undefined : this.contract.operation(req.op);
    const method = req.method ?? op?.method ?? 'GET';
    let path = req.path ?? op?.path;
    if (path === undefined) throw new Error('a request needs an operation or a path');
    path = path.replace(/\{([^}]+)\}/g, (_, name: string) => {
      const value = req.params?.[name];
      if (value === undefined) throw new Error(`${req.op}: no value for {${name}}`);
      return encodeURIComponent(value);
    });
    const url = new URL(path.replace(/^\//, ''), this.options.baseUrl.endsWith('/') ? this.options.baseUrl : `${this.options.baseUrl}/`);
    for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) url.searchParams.append(k, String(v));

    const headers: Record<string, string> = {};
    if (this.options.token && !req.noToken) headers.authorization = `Bearer ${this.options.token}`;
    let body: string | undefined = req.body;
    if (req.json !== undefined) {
      body = JSON.stringify(req.json);
      headers['content-type'] = 'application/json';
    }
    Object.assign(headers, req.headers);

    const what = `${method} ${url.pathname}${url.search}`;
    const started = performance.now();
    let res: globalThis.Response;
    let text: string;
    Session.requests++;
    try {
      res = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(this.options.requestTimeoutMs + (req.holdMs ?? 0)) });
      text = await res.text();
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const why = e.name === 'TimeoutError' ? `no answer within ${Math.round((this.options.requestTimeoutMs + (req.holdMs ?? 0)) / 1000)} s` : (e.cause?.code ?? e.cause?.message ?? e.message);
      throw new CaseFailure(`${clip(what)}: ${why}`);
    }
    const ms = performance.now() - started;
    // A method or path of the request's own is one the document has no operation for: its
    // answer is judged as such (an error, as a problem).
    const judgedBy = op && req.method === undefined && req.path === undefined ? op.id : undefined;
    const problems = this.contract.check(judgedBy, { method, status: res.status, headers: res.headers, text });
    if (problems.length > 0) throw new CaseFailure(`${clip(what)} → ${res.status}: ${problems.join('; ')}`);
    let parsed: unknown;
    if (/[/+]json\s*(;|$)/i.test(res.headers.get('content-type') ?? '') && text.length > 0) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    return { status: res.status, headers: res.headers, text, body: parsed, ms };
  }
}

/** Shortens a request line or a value for a reason line. */
export function clip(s: string, n = 160): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}
