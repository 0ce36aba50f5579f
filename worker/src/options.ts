/**
 * The worker's options, their defaults, and how they are checked and resolved into the
 * settings the worker runs with. Every duration says its unit in its name: `waitSeconds` is
 * sent to the server as the poll's `wait` (the wire's seconds), every other duration is in ms.
 */
import { RelayClient } from '@relay-ts/client';
import type { ActiveJob } from './job.js';
import { nodeTransport } from './node-transport.js';
import { stderrLogger, type Logger } from './logger.js';
import type { WorkerMetricsOptions } from './metrics.js';

/** What `process` is: given as the `process` option, or as the method of a subclass. */
export type ProcessFunction<P = unknown, S = unknown> = (job: ActiveJob<P, S>) => Promise<void>;

/** What the constructor takes. They are checked at once: the constructor throws a TypeError for a missing or out-of-range one. */
export interface WorkerOptions<P = unknown, S = unknown> {
  /** The queue to take jobs from. Required. */
  queue: string;
  /**
   * The relay server's URL, or the URLs of several servers of one database in order of
   * preference (the client's fail-over: polls, heartbeats and completions move to another
   * server while one is unreachable, and come back). Either this or `client`.
   */
  baseUrl?: string | readonly string[];
  /** A client to use instead of one made from `baseUrl` (for its retry, timeout or fetch options). */
  client?: RelayClient<P, S>;
  /**
   * The server's token for a worker (role `worker` or `admin`), sent as `Authorization: Bearer`
   * by the client made from `baseUrl`. With `client`, give the token to that client instead.
   */
  token?: string;
  /** Does the work of one job, when the worker is not a subclass that implements `process`. */
  process?: ProcessFunction<P, S>;
  /** The most jobs in `process` at once, 1..1000. Default 1. */
  concurrency?: number;
  /**
   * How many jobs the worker may lease beyond `concurrency` to start as soon as a slot frees,
   * without waiting for a poll: 0..1000, or `'auto'` (the default). A prefetched job is leased
   * (its heartbeats run while it waits) and no other worker can take it, and `stop()` runs it
   * like any job in hand: worth it for many short jobs, whose polls' round trips would
   * otherwise leave slots empty; not for long ones, which it keeps from other workers.
   * `'auto'` holds as many as the slots finish in two poll round trips, as measured under a
   * backlog, within a quarter of the shortest lease's worth of waiting and at most 1000: none
   * for jobs much longer than a round trip, more when the round trips slow down (a busy host).
   */
  prefetch?: number | 'auto';
  /**
   * How long a poll may wait on the server for a job (long poll), 0..60 seconds: the poll's
   * `wait`. Default 30: an idle worker sends one request per 30 s and gets a new job as soon
   * as it is enqueued. 0 polls without waiting and backs off between empty answers (for
   * servers without long poll).
   */
  waitSeconds?: number;
  /** The first backoff after an empty answer (with `waitSeconds` 0) or a poll error. Default 100. */
  pollIntervalMs?: number;
  /** The backoff doubles up to this ceiling. Default 5 000. */
  maxPollIntervalMs?: number;
  /** Between the heartbeats of a job in process. Default a third of the job's `timeout` (at least 100 ms). */
  heartbeatIntervalMs?: number;
  /** How long `stop()` waits for jobs in process before it aborts their signals and returns. Default 25 000. */
  shutdownTimeoutMs?: number;
  /**
   * How long a completion waits for others to join it in one `POST /v1/complete/batch`.
   * 0: no wait. Without settleOnPoll each job is then completed alone with
   * `DELETE /v1/complete`; with it, completions that finish together go as one batch.
   * Default 5.
   */
  completionBatchWindowMs?: number;
  /**
   * Whether completions ride on the next poll (`POST /v1/next`, one request fewer per job)
   * when one is sent under a backlog while they wait: a poll for the slots the finished jobs
   * freed usually is. A poll that carries completions does not wait on the server (its `wait`
   * is 0), so their outcome comes back at once; on a quiet queue, or while a poll is already
   * under way (a long poll on an idle queue), completions go on their own as
   * `completionBatchWindowMs` says. Default true;
   * false sends every completion on its own (for servers older than `POST /v1/next`; a worker
   * also stops carrying completions by itself when the server answers that it has no such route).
   */
  settleOnPoll?: boolean;
  /**
   * How long `process` may run for one job. Past it, `job.signal` aborts with a
   * JobTimeoutError and the job is failed at once with that error's message (it is retried as
   * any failure, or moved to the failed jobs). The slot stays taken until `process` returns.
   * Default: no limit.
   */
  jobTimeoutMs?: number;
  /**
   * Where the worker logs (debug, info, warn, error). Default: warnings and errors to stderr,
   * one line each; `{}` logs nothing.
   */
  logger?: Logger;
  /**
   * Export the worker's metrics (jobs started, succeeded and failed, handler duration,
   * heartbeats, lost leases, by queue) to this prom-client registry. prom-client must then be
   * installed; it is loaded by `start()`. Default: no metrics (the events still tell all of it).
   */
  metrics?: WorkerMetricsOptions;
}

export interface StartOptions {
  /** Stop on SIGTERM and SIGINT; a second signal stops at once, without waiting for jobs. Default false. */
  handleSignals?: boolean;
}

/** The defaults, in one place. */
export const workerDefaults = Object.freeze({
  concurrency: 1,
  prefetch: 'auto',
  waitSeconds: 30,
  pollIntervalMs: 100,
  maxPollIntervalMs: 5_000,
  shutdownTimeoutMs: 25_000,
  completionBatchWindowMs: 5,
  settleOnPoll: true,
  /** The least default heartbeat interval, for jobs with a very short timeout. */
  minHeartbeatIntervalMs: 100,
});

/**
 * The options as the worker runs with them (`worker.settings`): the defaults filled in and a
 * client made from `baseUrl` when none was given. `heartbeatIntervalMs` and `jobTimeoutMs`
 * stay undefined when not given (a third of each job's timeout; no limit).
 */
export interface WorkerSettings<P = unknown, S = unknown> {
  readonly client: RelayClient<P, S>;
  readonly queue: string;
  readonly concurrency: number;
  readonly prefetch: number | 'auto';
  readonly waitSeconds: number;
  readonly pollIntervalMs: number;
  readonly maxPollIntervalMs: number;
  readonly heartbeatIntervalMs: number | undefined;
  readonly shutdownTimeoutMs: number;
  readonly completionBatchWindowMs: number;
  readonly settleOnPoll: boolean;
  readonly jobTimeoutMs: number | undefined;
  readonly logger: Logger;
  readonly metrics: WorkerMetricsOptions | undefined;
}

function check(ok: boolean, name: string, rule: string, value: unknown): asserts ok {
  if (!ok) throw new TypeError(`worker option ${name} must be ${rule}, got ${JSON.stringify(value) ?? String(value)}`);
}

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Checks the options and fills in the defaults; throws a TypeError naming the first wrong one. */
export function resolveSettings<P, S>(options: WorkerOptions<P, S>): WorkerSettings<P, S> {
  const given = (options ?? {}) as Partial<WorkerOptions<P, S>>;
  const { queue, baseUrl, client } = given;
  check(typeof queue === 'string' && queue.length > 0, 'queue', 'a non-empty string', queue);
  if (client === undefined) {
    const given = Array.isArray(baseUrl) ? (baseUrl as unknown[]) : [baseUrl];
    const ok = given.length > 0 && given.every((url) => typeof url === 'string' && url.length > 0);
    check(ok, 'baseUrl', 'a URL, or a non-empty list of URLs, when no client is given', baseUrl);
  }
  const { token } = given;
  if (token !== undefined) {
    // The token's value is never put in the message (it would end up in logs).
    if (client !== undefined) throw new TypeError('worker option token must not be given with client: give the token to that client');
    if (typeof token !== 'string' || token === '') throw new TypeError('worker option token must be a non-empty string');
  }
  if (given.process !== undefined) check(typeof given.process === 'function', 'process', 'a function', given.process);

  const concurrency = given.concurrency ?? workerDefaults.concurrency;
  check(Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= 1000, 'concurrency', 'an integer in 1..1000', concurrency);
  const prefetch = given.prefetch ?? workerDefaults.prefetch;
  check(prefetch === 'auto' || (Number.isInteger(prefetch) && prefetch >= 0 && prefetch <= 1000), 'prefetch', "an integer in 0..1000 or 'auto'", prefetch);
  const waitSeconds = given.waitSeconds ?? workerDefaults.waitSeconds;
  check(isNumber(waitSeconds) && waitSeconds >= 0 && waitSeconds <= 60, 'waitSeconds', 'a number of seconds in 0..60', waitSeconds);
  const pollIntervalMs = given.pollIntervalMs ?? workerDefaults.pollIntervalMs;
  check(isNumber(pollIntervalMs) && pollIntervalMs > 0, 'pollIntervalMs', 'a positive number of ms', pollIntervalMs);
  const maxPollIntervalMs = given.maxPollIntervalMs ?? Math.max(workerDefaults.maxPollIntervalMs, pollIntervalMs);
  check(isNumber(maxPollIntervalMs) && maxPollIntervalMs >= pollIntervalMs, 'maxPollIntervalMs', 'a number of ms not below pollIntervalMs', maxPollIntervalMs);
  const heartbeatIntervalMs = given.heartbeatIntervalMs;
  if (heartbeatIntervalMs !== undefined) check(isNumber(heartbeatIntervalMs) && heartbeatIntervalMs > 0, 'heartbeatIntervalMs', 'a positive number of ms', heartbeatIntervalMs);
  const shutdownTimeoutMs = given.shutdownTimeoutMs ?? workerDefaults.shutdownTimeoutMs;
  check(typeof shutdownTimeoutMs === 'number' && shutdownTimeoutMs >= 0, 'shutdownTimeoutMs', 'a number of ms, 0 or more', shutdownTimeoutMs);
  const completionBatchWindowMs = given.completionBatchWindowMs ?? workerDefaults.completionBatchWindowMs;
  check(isNumber(completionBatchWindowMs) && completionBatchWindowMs >= 0, 'completionBatchWindowMs', 'a number of ms, 0 or more', completionBatchWindowMs);
  const settleOnPoll = given.settleOnPoll ?? workerDefaults.settleOnPoll;
  check(typeof settleOnPoll === 'boolean', 'settleOnPoll', 'true or false', settleOnPoll);
  const jobTimeoutMs = given.jobTimeoutMs;
  if (jobTimeoutMs !== undefined) check(typeof jobTimeoutMs === 'number' && jobTimeoutMs > 0, 'jobTimeoutMs', 'a positive number of ms', jobTimeoutMs);
  const logger = given.logger ?? stderrLogger;
  check(typeof logger === 'object' && logger !== null, 'logger', 'an object with debug, info, warn or error methods', logger);
  const metrics = given.metrics;
  if (metrics !== undefined) {
    const registry = metrics?.registry as Partial<WorkerMetricsOptions['registry']> | undefined;
    check(typeof registry?.getSingleMetric === 'function' && typeof registry.registerMetric === 'function', 'metrics', '{ registry } with a prom-client Registry', '(not a registry)');
  }

  return Object.freeze({
    client: client ?? new RelayClient<P, S>({ baseUrl: baseUrl!, token, ...nodeTransport() }),
    queue,
    concurrency,
    prefetch,
    waitSeconds,
    pollIntervalMs,
    maxPollIntervalMs,
    heartbeatIntervalMs,
    shutdownTimeoutMs,
    completionBatchWindowMs,
    settleOnPoll,
    jobTimeoutMs: jobTimeoutMs === Infinity ? undefined : jobTimeoutMs,
    logger,
    metrics,
  });
}
