import { randomUUID } from 'node:crypto';
import { defaults, startServer, createLogger, type Config, type RelayServer } from '../../server/src/index.js';

/** Which database this run of the suite is on: DATABASE_URL set means the real PostgreSQL. */
export const backend: 'postgres' | 'pglite' = process.env.DATABASE_URL ? 'postgres' : 'pglite';

/**
 * Starts a relay server in this process on a free port, on the suite's database, with every
 * response validated against openapi.yaml (a response that breaks the document becomes a 500
 * and fails the test that made it). Leases are reaped every 100 ms to keep expiry tests short.
 */
export async function startRelay(overrides: Partial<Config> = {}): Promise<RelayServer> {
  const config: Config = {
    ...defaults,
    port: 0,
    host: '127.0.0.1',
    reapInterval: 0.1,
    databaseUrl: process.env.DATABASE_URL || undefined,
    dataDir: 'memory://',
    logLevel: process.env.RELAY_TEST_LOG ?? 'silent',
    validateResponses: true,
    ...overrides,
  };
  return startServer(config, createLogger(config.logLevel));
}

let shared: RelayServer | undefined;

/** The server the root hooks start once for the whole run. */
export function relay(): RelayServer {
  if (!shared) throw new Error('the shared relay server is not running (test/setup.ts)');
  return shared;
}

export async function startSharedRelay(): Promise<void> {
  shared = await startRelay();
}

export async function stopSharedRelay(): Promise<void> {
  await shared?.close();
  shared = undefined;
}

/** A queue name no other test uses, so tests need no cleanup and run against one database. */
export function uniqueQueue(label = 'q'): string {
  return `${label}-${randomUUID().slice(0, 8)}`;
}

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  /** Parsed JSON when the response has a JSON body, else undefined. */
  body: T;
  text: string;
}

export interface CallOptions {
  query?: Record<string, string | number | undefined>;
  /** Sent as JSON. */
  json?: unknown;
  /** Sent as is (with headers you choose). */
  raw?: string | Buffer;
  headers?: Record<string, string>;
  baseUrl?: string;
}

/** One real HTTP request to the relay server. */
export async function call<T = any>(method: string, path: string, options: CallOptions = {}): Promise<ApiResponse<T>> {
  const url = new URL(path, options.baseUrl ?? relay().url);
  for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
  const headers: Record<string, string> = { ...options.headers };
  let body: string | Buffer | undefined = options.raw;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(url, { method, headers, body: typeof body === 'string' || body === undefined ? body : new Uint8Array(body) });
  const text = await res.text();
  const type = res.headers.get('content-type') ?? '';
  const parsed = text && /json/.test(type) ? JSON.parse(text) : undefined;
  return { status: res.status, headers: res.headers, body: parsed as T, text };
}

export interface JobInput {
  id: string;
  queue: string;
  timeout: number;
  max_retries?: number;
  payload?: unknown;
  state?: unknown;
  run_at?: string;
}

export const enqueue = (job: JobInput, baseUrl?: string) => call('POST', '/enqueue', { json: job, baseUrl });
export const enqueueBatch = (jobs: JobInput[], baseUrl?: string) => call('POST', '/enqueue/batch', { json: jobs, baseUrl });
export const next = (queue: string, num_jobs?: number, baseUrl?: string) =>
  call('GET', '/v1/next', { query: { queue, num_jobs }, baseUrl });
/** opts.state present (even null) sends it as the body; absent sends no body. */
export const heartbeat = (queue: string, job_id: string, opts: { state?: unknown; run_id?: string } = {}) =>
  call('PATCH', '/v1/heartbeat', { query: { queue, job_id, run_id: opts.run_id }, ...('state' in opts ? { json: opts.state } : {}) });
export const complete = (queue: string, job_id: string, run_id?: string, baseUrl?: string) =>
  call('DELETE', '/v1/complete', { query: { queue, job_id, run_id }, baseUrl });

/** Leases every job of a queue that is available now, in delivery order. */
export async function drain(queue: string): Promise<any[]> {
  const res = await next(queue, 1000);
  return res.status === 200 ? res.body : [];
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls fn until it returns a truthy value or the deadline passes. */
export async function eventually<T>(fn: () => Promise<T | undefined | false>, timeoutMs = 5000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}
