/** The worker's options, their defaults, and how they are read and checked at start(). */
import { RelayClient } from '@relay-ts/client';
import { nodeTransport } from './node-transport.js';
import { stderrLogger, type Logger } from './logger.js';

/**
 * Every option may also be given by overriding the property of the same name in the
 * subclass (`protected override queue = 'mail'`); an option passed to the constructor wins
 * over the property, and the property over the default. They are read once, at `start()`.
 */
export interface WorkerOptions<P = unknown, S = unknown> {
  /** The relay server's URL. Either this or `client`. */
  baseUrl?: string;
  /** A client to use instead of one made from `baseUrl` (for its retry, timeout or fetch options). */
  client?: RelayClient<P, S>;
  /** The queue to take jobs from. Required. */
  queue?: string;
  /** The most jobs in `process` at once, 1..1000. Default 1. */
  concurrency?: number;
  /**
   * How many jobs, 0..1000, the worker may lease beyond `concurrency` to start as soon as a
   * slot frees, without waiting for a poll. Default 0. A prefetched job is leased (its
   * heartbeats run while it waits) and no other worker can take it, and `stop()` runs it
   * like any job in hand: worth it for many short jobs (up to 1.8× the jobs per second in
   * the bench, prefetch = concurrency), not for long ones.
   */
  prefetch?: number;
  /**
   * Seconds a poll may wait on the server for a job (long poll), 0..60. Default 30: an idle
   * worker sends one request per 30 s and gets a new job as soon as it is enqueued. 0 polls
   * without waiting and backs off between empty answers (for servers without long poll).
   */
  wait?: number;
  /** Milliseconds: the first backoff after an empty answer (with `wait` 0) or a poll error. Default 100. */
  pollInterval?: number;
  /** Milliseconds: the backoff doubles up to this ceiling. Default 5 000. */
  maxPollInterval?: number;
  /** Milliseconds between the heartbeats of a job in process. Default a third of the job's `timeout` (at least 100). */
  heartbeatInterval?: number;
  /** Milliseconds `stop()` waits for jobs in process before it aborts their signals and returns. Default 25 000. */
  shutdownTimeout?: number;
  /**
   * Milliseconds a completion waits for others to join it in one `POST /v1/complete/batch`.
   * 0 completes each job alone with `DELETE /v1/complete`. Default 5.
   */
  completionBatchWindowMs?: number;
  /**
   * Milliseconds `process` may run for one job. Past it, `job.signal` aborts with a
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
}

export interface StartOptions {
  /** Stop on SIGTERM and SIGINT; a second signal stops at once, without waiting for jobs. Default false. */
  handleSignals?: boolean;
}

export const workerDefaults = Object.freeze({
  concurrency: 1,
  prefetch: 0,
  wait: 30,
  pollInterval: 100,
  maxPollInterval: 5_000,
  shutdownTimeout: 25_000,
  completionBatchWindowMs: 5,
  /** The least default heartbeat interval, for jobs with a very short timeout. */
  minHeartbeatInterval: 100,
});

/** The options as the worker uses them. */
export interface Settings<P, S> {
  client: RelayClient<P, S>;
  queue: string;
  concurrency: number;
  prefetch: number;
  wait: number;
  pollInterval: number;
  maxPollInterval: number;
  heartbeatInterval: number | undefined;
  shutdownTimeout: number;
  completionBatchWindowMs: number;
  jobTimeoutMs: number | undefined;
  logger: Logger;
}

export const optionNames = [
  'baseUrl',
  'client',
  'queue',
  'concurrency',
  'prefetch',
  'wait',
  'pollInterval',
  'maxPollInterval',
  'heartbeatInterval',
  'shutdownTimeout',
  'completionBatchWindowMs',
  'jobTimeoutMs',
  'logger',
] as const satisfies readonly (keyof WorkerOptions)[];

function check(ok: boolean, name: string, rule: string, value: unknown): asserts ok {
  if (!ok) throw new TypeError(`worker option ${name} must be ${rule}, got ${JSON.stringify(value) ?? String(value)}`);
}

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Resolves and checks the options: constructor options, then properties, then defaults. */
export function resolveSettings<P, S>(given: WorkerOptions<P, S>, properties: WorkerOptions<P, S>): Settings<P, S> {
  const pick = <K extends keyof WorkerOptions<P, S>>(name: K): WorkerOptions<P, S>[K] => given[name] ?? properties[name];
  const queue = pick('queue');
  check(typeof queue === 'string' && queue.length > 0, 'queue', 'a non-empty string', queue);
  const baseUrl = pick('baseUrl');
  const client = pick('client');
  if (client === undefined) check(typeof baseUrl === 'string' && baseUrl.length > 0, 'baseUrl', 'a URL when no client is given', baseUrl);

  const concurrency = pick('concurrency') ?? workerDefaults.concurrency;
  check(Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= 1000, 'concurrency', 'an integer in 1..1000', concurrency);
  const prefetch = pick('prefetch') ?? workerDefaults.prefetch;
  check(Number.isInteger(prefetch) && prefetch >= 0 && prefetch <= 1000, 'prefetch', 'an integer in 0..1000', prefetch);
  const wait = pick('wait') ?? workerDefaults.wait;
  check(isNumber(wait) && wait >= 0 && wait <= 60, 'wait', 'a number of seconds in 0..60', wait);
  const pollInterval = pick('pollInterval') ?? workerDefaults.pollInterval;
  check(isNumber(pollInterval) && pollInterval > 0, 'pollInterval', 'a positive number of ms', pollInterval);
  const maxPollInterval = pick('maxPollInterval') ?? Math.max(workerDefaults.maxPollInterval, pollInterval);
  check(isNumber(maxPollInterval) && maxPollInterval >= pollInterval, 'maxPollInterval', 'a number of ms not below pollInterval', maxPollInterval);
  const heartbeatInterval = pick('heartbeatInterval');
  if (heartbeatInterval !== undefined) check(isNumber(heartbeatInterval) && heartbeatInterval > 0, 'heartbeatInterval', 'a positive number of ms', heartbeatInterval);
  const shutdownTimeout = pick('shutdownTimeout') ?? workerDefaults.shutdownTimeout;
  check(typeof shutdownTimeout === 'number' && shutdownTimeout >= 0, 'shutdownTimeout', 'a number of ms, 0 or more', shutdownTimeout);
  const completionBatchWindowMs = pick('completionBatchWindowMs') ?? workerDefaults.completionBatchWindowMs;
  check(isNumber(completionBatchWindowMs) && completionBatchWindowMs >= 0, 'completionBatchWindowMs', 'a number of ms, 0 or more', completionBatchWindowMs);
  const jobTimeoutMs = pick('jobTimeoutMs');
  if (jobTimeoutMs !== undefined) check(typeof jobTimeoutMs === 'number' && jobTimeoutMs > 0, 'jobTimeoutMs', 'a positive number of ms', jobTimeoutMs);
  const logger = pick('logger') ?? stderrLogger;
  check(typeof logger === 'object' && logger !== null, 'logger', 'an object with debug, info, warn or error methods', logger);

  return {
    client: client ?? new RelayClient<P, S>({ baseUrl: baseUrl!, ...nodeTransport() }),
    queue,
    concurrency,
    prefetch,
    wait,
    pollInterval,
    maxPollInterval,
    heartbeatInterval,
    shutdownTimeout,
    completionBatchWindowMs,
    jobTimeoutMs: jobTimeoutMs === Infinity ? undefined : jobTimeoutMs,
    logger,
  };
}
