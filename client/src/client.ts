/**
 * RelayClient: one method per operation of openapi.yaml, on openapi-fetch. Every method sends
 * through `#call` and `send` (send.ts), so timeouts, retries and errors work the same everywhere.
 */
import { context, propagation } from '@opentelemetry/api';
import createClient, { type Client, type ClientOptions, type FetchResponse, type MaybeOptionalInit } from 'openapi-fetch';
import { Endpoints } from './endpoints.js';
import { defaultTimeoutMs, resolveRetry, send, type FetchResult, type RequestOptions, type RetryOptions, type WriteOptions } from './send.js';
import type { paths } from './schema.js';
import { RelayError } from './errors.js';
import type {
  CompleteBatchResult, Delivery, FailResult, SettleAndNextResult, FailedJob, Health, Job, JobDetails, JobPage, JobRef, JobStatus, NewJob, PurgeFailedResult,
  QueueSummary, QueueThroughput, RescheduleJob, RetryFailedResult, RunAtInput, Whoami,
} from './types.js';

type Method = 'get' | 'head' | 'post' | 'patch' | 'delete';
/** The paths of openapi.yaml that have operation `M`. */
type PathsWith<M extends Method> = { [P in keyof paths]: paths[P] extends { [K in M]: object } ? P : never }[keyof paths];

/** The most jobs one `POST /enqueue/batch` takes (openapi.yaml: maxItems). */
export const MAX_ENQUEUE_BATCH = 10_000;
/** The most jobs one `POST /v1/complete/batch` takes (openapi.yaml: maxItems). */
export const MAX_COMPLETE_BATCH = 1000;

export interface RelayClientOptions {
  /**
   * The server's URL, e.g. `http://127.0.0.1:8080`; or the URLs of several servers of one
   * database, in order of preference. With several, a request a server cannot serve (no
   * connection, no answer, 429, 502, 503, 504) moves to the next server that is not backing
   * off, when it is safe to send again (see the README's Fail-over); the server that failed is
   * skipped for a back-off (1 s, doubling up to 30 s), then tried again, and used again in its
   * turn once it answers.
   */
  baseUrl: string | readonly string[];
  /** A fetch to use instead of `globalThis.fetch`. */
  fetch?: ClientOptions['fetch'];
  /** The Request class that fetch takes, when it is not `globalThis.Request` (a custom transport). */
  Request?: ClientOptions['Request'];
  /** Headers sent with every request (e.g. authorization for a proxy in front of relay). */
  headers?: ClientOptions['headers'];
  /**
   * The server's token for this client's role, sent as `Authorization: Bearer <token>` on every
   * request. A server with tokens answers a missing or unknown one with UnauthorizedError and
   * a role that may not call the operation with ForbiddenError; neither is retried. Use
   * https:// (a TLS proxy in front of relay) wherever the network is not trusted: the token
   * travels in every request.
   */
  token?: string;
  /** How retryable errors are retried; `false` turns retries off. */
  retry?: RetryOptions | false;
  /** Per attempt, in ms; 0 disables it. Default 30 000. */
  timeoutMs?: number;
  /** `enqueueBatch` sends at most this many jobs per request. Default and maximum 10 000. */
  maxBatchSize?: number;
  /** `completeBatch` sends at most this many jobs per request. Default and maximum 1000. */
  maxCompleteBatchSize?: number;
  /**
   * Whether each call that changes something carries an Idempotency-Key (see WriteOptions).
   * Default true; false for a server that does not take the header.
   */
  idempotencyKeys?: boolean;
}

export interface NextOptions extends RequestOptions {
  /** How many jobs to lease at the most, 1..1000. Default 1. */
  numJobs?: number;
  /** Seconds the server may hold the request until a job is available (long poll), 0..60. */
  wait?: number;
}

/** A delivery to fail in `settleAndNext`: why, and when it may run again (default the server's backoff). */
export interface DeliveryFailure extends Delivery {
  error?: string;
  retryIn?: number;
}

export interface SettleAndNextOptions extends NextOptions {
  /** Deliveries to complete, each with its `run_id`. */
  complete?: readonly Delivery[];
  /** Deliveries to fail, each with its `run_id`. */
  fail?: readonly DeliveryFailure[];
}

/** The most deliveries one `POST /v1/next` settles (openapi.yaml: maxItems). */
export const MAX_SETTLEMENTS = 1000;

export interface HeartbeatOptions<S> extends RequestOptions {
  /** Present (`null` included): replaces the stored state. Absent or undefined: the state is kept. */
  state?: S | null;
  /** The delivery this heartbeat belongs to; a 404 when the job was delivered again since. */
  runId?: string;
}

export interface CompleteOptions extends WriteOptions {
  runId?: string;
}

export interface FailOptions extends WriteOptions {
  runId?: string;
  /** Why the job failed; kept as the reason when it moves to the failed jobs. */
  error?: string;
  /** Seconds until the job may run again; default the server's backoff. */
  retryIn?: number;
}

export interface ListFailedOptions extends RequestOptions {
  /** Only the failures of this job. */
  jobId?: string;
  /** How many at the most, 1..1000. Default 100. */
  limit?: number;
}

export interface ListJobsOptions extends RequestOptions {
  /** How many at the most, 1..1000 (the server may answer fewer). Default 100. */
  limit?: number;
  /** The `next_cursor` of the previous page. */
  cursor?: string;
}

export interface ThroughputOptions extends RequestOptions {
  /** How many minutes, the current one included, 1..60. Default 15. */
  minutes?: number;
}

export interface FailedJobsOptions extends RequestOptions {
  /** Only the jobs that failed before this time. */
  failedBefore?: RunAtInput;
}

export interface EnqueueBatchOptions extends WriteOptions {
  maxBatchSize?: number;
}

export interface CompleteBatchOptions extends WriteOptions {
  maxBatchSize?: number;
}

function runAt(value: RunAtInput | undefined): string | undefined {
  if (!(value instanceof Date)) return value;
  // An invalid Date goes out as "Invalid Date", which the server answers with a ValidationError.
  return Number.isNaN(value.getTime()) ? String(value) : value.toISOString();
}

function toWire<J extends { run_at?: RunAtInput }>(job: J): Omit<J, 'run_at'> & { run_at?: string } {
  const { run_at, ...rest } = job;
  return run_at === undefined ? rest : { ...rest, run_at: runAt(run_at) };
}

/**
 * The request body, serialized once up front: a value JSON cannot hold (a cycle, a BigInt)
 * rejects the call with JSON.stringify's TypeError before any request, and retries resend
 * the same text.
 */
function json<B>(body: B): { body: B; bodySerializer: () => string } {
  const text = JSON.stringify(body);
  return { body, bodySerializer: () => text };
}

/**
 * The base URL, checked now rather than failing each attempt. It must be http: or https:; a
 * relative one works in a browser page (resolved against the page). Without a scheme,
 * `localhost:8080` would parse as a URL of scheme `localhost:`.
 */
function checkedBaseUrl(baseUrl: string): string {
  let protocol: string | undefined;
  try {
    protocol = new URL(baseUrl, (globalThis as { location?: { href?: string } }).location?.href).protocol;
  } catch {
    // reported below
  }
  if (protocol !== 'http:' && protocol !== 'https:') {
    const hint = typeof baseUrl === 'string' && !baseUrl.includes('://') && /^[\w.-]+:\d+/.test(baseUrl) ? ` (did you mean "http://${baseUrl}"?)` : '';
    throw new TypeError(`RelayClient: baseUrl must be an http: or https: URL such as http://127.0.0.1:8080, got ${JSON.stringify(baseUrl)}${hint}`);
  }
  return baseUrl;
}

/** One URL, or a non-empty list of distinct ones, each checked. */
function checkedBaseUrls(baseUrl: string | readonly string[]): string[] {
  if (!Array.isArray(baseUrl)) return [checkedBaseUrl(baseUrl as string)];
  if (baseUrl.length === 0) throw new TypeError('RelayClient: baseUrl must be a URL or a non-empty list of URLs, got []');
  const urls = baseUrl.map((url: string) => checkedBaseUrl(url));
  const twice = urls.find((url, i) => urls.indexOf(url) !== i);
  if (twice !== undefined) throw new TypeError(`RelayClient: baseUrl lists ${JSON.stringify(twice)} twice`);
  return urls;
}

/** The Authorization header of a token, checked now: a token a header cannot carry would fail every call. */
function checkedToken(token: string | undefined): { Authorization: string } | undefined {
  if (token === undefined) return undefined;
  if (typeof token !== 'string' || !/^[A-Za-z0-9\-._~+/]+=*$/.test(token)) {
    // The token itself is left out of the message: it would end up in logs.
    throw new TypeError('RelayClient: token must be a non-empty string of letters, digits and - . _ ~ + / (then = only)');
  }
  return { Authorization: `Bearer ${token}` };
}

/**
 * The active OpenTelemetry context as headers (traceparent, tracestate), through the
 * propagator the application registered; none registered (no SDK), none sent. The server keeps
 * an enqueue's traceparent with its jobs, so that the worker's span joins the producer's trace.
 */
function traceHeaders(): Record<string, string> | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  for (const _ in carrier) return carrier;
  return undefined;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`batch size must be a positive integer, got ${size}`);
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * A client of one relay server, or of several on one database (fail-over). `P` is the jobs'
 * payload type and `S` their state type, so that a producer and a worker can share one job type.
 */
export class RelayClient<P = unknown, S = unknown> {
  /** The first (preferred) server's URL. */
  readonly baseUrl: string;
  /** Every server's URL, in order of preference (one element for a single `baseUrl`). */
  readonly baseUrls: readonly string[];
  readonly #endpoints: Endpoints;
  readonly #api: Client<paths>;
  readonly #retry: RetryOptions | false | undefined;
  readonly #timeoutMs: number;
  readonly #maxBatchSize: number;
  readonly #maxCompleteBatchSize: number;
  readonly #idempotencyKeys: boolean;
  readonly #authorization: { Authorization: string } | undefined;

  constructor(options: RelayClientOptions) {
    this.#endpoints = new Endpoints(checkedBaseUrls(options.baseUrl));
    this.baseUrls = this.#endpoints.urls;
    this.baseUrl = this.baseUrls[0]!;
    this.#api = createClient<paths>({ baseUrl: this.baseUrl, fetch: options.fetch, Request: options.Request, headers: options.headers });
    this.#retry = options.retry;
    this.#timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
    this.#maxBatchSize = options.maxBatchSize ?? MAX_ENQUEUE_BATCH;
    this.#maxCompleteBatchSize = options.maxCompleteBatchSize ?? MAX_COMPLETE_BATCH;
    this.#idempotencyKeys = options.idempotencyKeys ?? true;
    this.#authorization = checkedToken(options.token);
  }

  /**
   * The Idempotency-Key header of one request: the caller's key, or a new one, the same on
   * every attempt of the request (send retries the same init). `part` tells apart the requests
   * of one call split into several (a large batch), so that each has a key of its own.
   */
  #key(options: WriteOptions, part?: { index: number; of: number }): { 'Idempotency-Key'?: string } {
    if (!this.#idempotencyKeys) return {};
    const own = options.idempotencyKey;
    if (own === undefined) return { 'Idempotency-Key': globalThis.crypto.randomUUID() };
    return { 'Idempotency-Key': part && part.of > 1 ? `${own}#${part.index}` : own };
  }

  /** The server the next request goes to: the first that is not backing off (see `baseUrl`). */
  get activeUrl(): string {
    return this.#endpoints.pick();
  }

  /**
   * Sends one operation of openapi.yaml through `send` (send.ts): the method and path are
   * named here once, for the request and for the errors. `extraMs` lengthens the timeout
   * (next's long poll), unless the timeout is off. A read, a write with an Idempotency-Key and
   * an operation that is `idempotent` by nature (a heartbeat) may be sent again to another
   * server after an attempt that may have gone through.
   */
  #call<M extends Method, Path extends PathsWith<M>, Init extends MaybeOptionalInit<paths[Path], M>>(
    method: M,
    path: Path,
    init: Init,
    options: RequestOptions,
    { extraMs = 0, idempotent = false }: { extraMs?: number; idempotent?: boolean } = {},
  ): Promise<FetchResponse<NonNullable<paths[Path][M]>, Init, `${string}/${string}`>['data']> {
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const request = this.#api.request as (method: M, path: Path, init: Init & { signal: AbortSignal; baseUrl: string }) => Promise<FetchResult<unknown>>;
    const keyed = (init as { params?: { header?: { 'Idempotency-Key'?: string } } }).params?.header?.['Idempotency-Key'] !== undefined;
    // Per request, over the client's headers (openapi-fetch merges them; undefined adds nothing).
    // The trace context is read now, in the caller's context: retries happen later, from timers.
    const trace = traceHeaders();
    const headers = trace || this.#authorization ? { ...trace, ...this.#authorization } : undefined;
    return send((signal, baseUrl) => request(method, path, { ...init, headers, signal, baseUrl } as unknown as Init & { signal: AbortSignal; baseUrl: string }), {
      method: method.toUpperCase(),
      path,
      endpoints: this.#endpoints,
      resendable: method === 'get' || method === 'head' || keyed || idempotent,
      timeoutMs: timeoutMs > 0 && Number.isFinite(timeoutMs) ? timeoutMs + extraMs : 0,
      signal: options.signal,
      retry: resolveRetry(this.#retry, options.retry),
    }) as Promise<FetchResponse<NonNullable<paths[Path][M]>, Init, `${string}/${string}`>['data']>;
  }

  /**
   * Stores one job. JobExistsError (409) when (queue, id) is waiting or in flight. A retry of
   * this call after a lost answer carries the same Idempotency-Key, so it gets the first
   * answer again and never stores the job twice, even if the job ran and completed meanwhile.
   */
  async enqueue(job: NewJob<P, S>, options: WriteOptions = {}): Promise<void> {
    await this.#call('post', '/enqueue', { params: { header: this.#key(options) }, ...json(toWire(job)) }, options);
  }

  /**
   * Stores many jobs, in requests of at most `maxBatchSize` jobs sent one after the other,
   * each atomic. Jobs whose (queue, id) exists are dropped silently. The retries of this call
   * are safe (each request keeps its Idempotency-Key); sending the same array again in a new
   * call is safe only with the same `idempotencyKey`: without it, jobs that ran and completed
   * meanwhile would be stored again. An empty array sends nothing.
   */
  async enqueueBatch(jobs: readonly NewJob<P, S>[], options: EnqueueBatchOptions = {}): Promise<void> {
    const size = Math.min(options.maxBatchSize ?? this.#maxBatchSize, MAX_ENQUEUE_BATCH);
    const parts = chunks(jobs, size);
    for (const [index, chunk] of parts.entries()) {
      const header = this.#key(options, { index, of: parts.length });
      await this.#call('post', '/enqueue/batch', { params: { header }, ...json(chunk.map(toWire)) }, options);
    }
  }

  /** Leases up to `numJobs` jobs of a queue; `[]` when none is available. */
  async next(queue: string, options: NextOptions = {}): Promise<Job<P, S>[]> {
    const query = { queue, num_jobs: options.numJobs, wait: options.wait };
    const waitMs = (options.wait ?? 0) * 1000;
    const jobs = await this.#call('get', '/v1/next', { params: { query } }, options, { extraMs: waitMs });
    return (jobs ?? []) as Job<P, S>[];
  }

  /**
   * Settles finished deliveries and leases the next jobs in one request (`POST /v1/next`):
   * completes `complete` and fails `fail` (completions first) in one transaction, then leases
   * up to `numJobs` (0: none) as `next` does, waiting up to `wait`. Each delivery comes back in
   * one list of `settled`: `completed`, `failed` (with its outcome) or `not_found` (the job no
   * longer has that delivery; nothing changed for it). A RangeError, before any request, for
   * more than 1000 deliveries. Safe to resend: every delivery names its run_id, so a retry after
   * a lost answer settles nothing twice; a delivery it then finds `not_found` was most likely
   * settled by the lost attempt (watch `retry.onRetry`'s `uncertain`). An error means nothing
   * was settled, unless an attempt's answer was lost.
   */
  async settleAndNext(queue: string, options: SettleAndNextOptions = {}): Promise<SettleAndNextResult<P, S>> {
    const complete = options.complete ?? [];
    const fail = options.fail ?? [];
    const count = complete.length + fail.length;
    if (count > MAX_SETTLEMENTS) throw new RangeError(`settleAndNext settles at most ${MAX_SETTLEMENTS} deliveries per request, got ${count}`);
    const delivery = ({ queue, job_id, run_id }: Delivery) => ({ queue, job_id, run_id });
    const failure = (f: DeliveryFailure) => {
      const reason = { ...(f.error === undefined ? {} : { error: f.error }), ...(f.retryIn === undefined ? {} : { retry_in: f.retryIn }) };
      return { ...delivery(f), fail: reason };
    };
    const body = count === 0 ? {} : json([...complete.map(delivery), ...fail.map(failure)]);
    const query = { queue, num_jobs: options.numJobs, wait: options.wait };
    const waitMs = (options.wait ?? 0) * 1000;
    const result = await this.#call('post', '/v1/next', { params: { query }, ...body }, options, { extraMs: waitMs, idempotent: true });
    return result as SettleAndNextResult<P, S>;
  }

  /** Renews a job's lease; with `state` present (even null) also replaces its stored state. */
  async heartbeat(queue: string, jobId: string, options: HeartbeatOptions<S> = {}): Promise<void> {
    const query = { queue, job_id: jobId, run_id: options.runId };
    const body = 'state' in options && options.state !== undefined ? json(options.state) : {};
    // Renewing a lease twice, with the same state, is the same as once.
    await this.#call('patch', '/v1/heartbeat', { params: { query }, ...body }, options, { idempotent: true });
  }

  /** Releases an in-flight job with new settings (run_at absent: now; state absent: cleared). */
  async reschedule(job: RescheduleJob<P, S>, options: WriteOptions = {}): Promise<void> {
    await this.#call('post', '/reschedule', { params: { header: this.#key(options) }, ...json(toWire(job)) }, options);
  }

  /** Removes a job. JobNotFoundError when there is none (or, with runId, it was delivered again). */
  async complete(queue: string, jobId: string, options: CompleteOptions = {}): Promise<void> {
    const query = { queue, job_id: jobId, run_id: options.runId };
    await this.#call('delete', '/v1/complete', { params: { query, header: this.#key(options) } }, options);
  }

  /** Removes many jobs, in requests of at most 1000; answers which were completed and which not found. */
  async completeBatch(refs: readonly JobRef[], options: CompleteBatchOptions = {}): Promise<CompleteBatchResult> {
    const size = Math.min(options.maxBatchSize ?? this.#maxCompleteBatchSize, MAX_COMPLETE_BATCH);
    const result: CompleteBatchResult = { completed: [], not_found: [] };
    const parts = chunks(refs, size);
    for (const [index, chunk] of parts.entries()) {
      const header = this.#key(options, { index, of: parts.length });
      const part = await this.#call('post', '/v1/complete/batch', { params: { header }, ...json(chunk) }, options);
      result.completed.push(...(part?.completed ?? []));
      result.not_found.push(...(part?.not_found ?? []));
    }
    return result;
  }

  /** Fails an in-flight job: back to its queue while retries remain, else to the failed jobs. */
  async fail(queue: string, jobId: string, options: FailOptions = {}): Promise<FailResult> {
    const query = { queue, job_id: jobId, run_id: options.runId };
    const hasBody = options.error !== undefined || options.retryIn !== undefined;
    const body = hasBody ? json({ error: options.error, retry_in: options.retryIn }) : {};
    const result = await this.#call('post', '/v1/fail', { params: { query, header: this.#key(options) }, ...body }, options);
    return result as FailResult;
  }

  /** The failed jobs of a queue, newest failure first. Deprecated: use `listJobs(queue, 'failed')`. */
  async listFailed(queue: string, options: ListFailedOptions = {}): Promise<FailedJob<P, S>[]> {
    const query = { queue, job_id: options.jobId, limit: options.limit };
    const jobs = await this.#call('get', '/v1/failed', { params: { query } }, options);
    return (jobs ?? []) as FailedJob<P, S>[];
  }

  /** The job with its status, or undefined when there is none (a completed job is gone). */
  async getJob(queue: string, jobId: string, options: RequestOptions = {}): Promise<JobDetails<P, S> | undefined> {
    try {
      return (await this.#call('get', '/v1/queues/{queue}/jobs/{id}', { params: { path: { queue, id: jobId } } }, options)) as JobDetails<P, S>;
    } catch (err) {
      if (err instanceof RelayError && err.status === 404) return undefined;
      throw err;
    }
  }

  /** Whether the job exists (waiting, scheduled, in flight or failed): a HEAD, no body. */
  async jobExists(queue: string, jobId: string, options: RequestOptions = {}): Promise<boolean> {
    try {
      await this.#call('head', '/v1/queues/{queue}/jobs/{id}', { params: { path: { queue, id: jobId } } }, options);
      return true;
    } catch (err) {
      if (err instanceof RelayError && err.status === 404) return false;
      throw err;
    }
  }

  /** One page of a queue's jobs in one status, in delivery order (failed: newest first). */
  async listJobs(queue: string, status: JobStatus, options: ListJobsOptions = {}): Promise<JobPage<P, S>> {
    const query = { queue, status, limit: options.limit, cursor: options.cursor };
    return (await this.#call('get', '/v1/jobs', { params: { query } }, options)) as JobPage<P, S>;
  }

  /** Every job of a queue in one status, page by page (`listJobs` with its cursors). */
  async *jobs(queue: string, status: JobStatus, options: Omit<ListJobsOptions, 'cursor'> = {}): AsyncGenerator<JobDetails<P, S>> {
    let cursor: string | undefined;
    do {
      const page = await this.listJobs(queue, status, { ...options, cursor });
      yield* page.jobs;
      cursor = page.next_cursor;
    } while (cursor !== undefined);
  }

  /** Every queue that holds a job or is paused, by name, with its counts. */
  async queues(options: RequestOptions = {}): Promise<QueueSummary[]> {
    return (await this.#call('get', '/v1/queues', {}, options)) as QueueSummary[];
  }

  /** One queue's counts (zero for a queue that holds nothing). */
  async queue(queue: string, options: RequestOptions = {}): Promise<QueueSummary> {
    return (await this.#call('get', '/v1/queues/{queue}', { params: { path: { queue } } }, options)) as QueueSummary;
  }

  /**
   * Jobs enqueued, completed and failed per minute over the last minutes, of every queue that
   * had any, summed over every server of the database.
   */
  async throughput(options: ThroughputOptions = {}): Promise<QueueThroughput[]> {
    return (await this.#call('get', '/v1/throughput', { params: { query: { minutes: options.minutes } } }, options)) as QueueThroughput[];
  }

  /** One queue's jobs enqueued, completed and failed per minute over the last minutes (zeros when none). */
  async queueThroughput(queue: string, options: ThroughputOptions = {}): Promise<QueueThroughput> {
    const init = { params: { path: { queue }, query: { minutes: options.minutes } } };
    return (await this.#call('get', '/v1/queues/{queue}/throughput', init, options)) as QueueThroughput;
  }

  /** Stops leasing the queue's jobs (enqueues still accepted, leases in flight kept). */
  async pauseQueue(queue: string, options: RequestOptions = {}): Promise<QueueSummary> {
    return (await this.#call('post', '/v1/queues/{queue}/pause', { params: { path: { queue } } }, options, { idempotent: true })) as QueueSummary;
  }

  /** Leases the queue's jobs again; waiting long polls are woken at once. */
  async resumeQueue(queue: string, options: RequestOptions = {}): Promise<QueueSummary> {
    return (await this.#call('post', '/v1/queues/{queue}/resume', { params: { path: { queue } } }, options, { idempotent: true })) as QueueSummary;
  }

  /**
   * Removes a waiting, scheduled or in-flight job (its worker learns it at its next heartbeat),
   * or else purges its kept failures. JobNotFoundError when there was neither.
   */
  async cancelJob(queue: string, jobId: string, options: RequestOptions = {}): Promise<void> {
    await this.#call('delete', '/v1/queues/{queue}/jobs/{id}', { params: { path: { queue, id: jobId } } }, options);
  }

  /**
   * Puts a failed job back in its queue with a fresh retry budget. JobNotFoundError when it has
   * no kept failure, JobExistsError when a job with its id is live.
   */
  async retryJob(queue: string, jobId: string, options: RequestOptions = {}): Promise<JobDetails<P, S>> {
    return (await this.#call('post', '/v1/queues/{queue}/jobs/{id}/retry', { params: { path: { queue, id: jobId } } }, options)) as JobDetails<P, S>;
  }

  /** Puts every failed job of the queue (or those failed before a time) back; says how many. */
  async retryFailedJobs(queue: string, options: FailedJobsOptions = {}): Promise<RetryFailedResult> {
    const query = { failed_before: runAt(options.failedBefore) };
    return (await this.#call('post', '/v1/queues/{queue}/failed/retry', { params: { path: { queue }, query } }, options)) as RetryFailedResult;
  }

  /** Deletes every failed job of the queue (or those failed before a time); says how many. */
  async purgeFailedJobs(queue: string, options: FailedJobsOptions = {}): Promise<PurgeFailedResult> {
    const query = { failed_before: runAt(options.failedBefore) };
    return (await this.#call('delete', '/v1/queues/{queue}/failed', { params: { path: { queue }, query } }, options)) as PurgeFailedResult;
  }

  /** The role of this client's token (`{ role: null }` when the server has no tokens). */
  async whoami(options: RequestOptions = {}): Promise<Whoami> {
    return (await this.#call('get', '/v1/whoami', {}, options)) as Whoami;
  }

  /** `{ status: 'ok', database }` when the server reaches its database; a RetryableError (503) when not. */
  async health(options: RequestOptions = {}): Promise<Health> {
    const health = await this.#call('get', '/health', {}, options);
    return health as Health;
  }
}
