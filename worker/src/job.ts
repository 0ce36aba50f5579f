/**
 * One delivery of a job while a worker holds it: what `process` receives. It keeps the lease
 * alive with heartbeats, remembers the latest checkpointed state, and sends every call with
 * the delivery's `run_id`, so that a call made after the lease was lost changes nothing.
 */
import { JobNotFoundError, type FailResult, type Job as LeasedJob, type RelayClient, type RunAtInput } from '@relay-ts/client';
import { timerMs } from './backoff.js';
import { JobSettledError, LeaseLostError, WorkerStoppedError } from './errors.js';

/** A job as `process` receives it. */
export interface Job<P = unknown, S = unknown> {
  readonly id: string;
  readonly queue: string;
  readonly payload: P;
  /** The latest state: as delivered (undefined when none is stored), then as last given to `heartbeat`. */
  readonly state: S | undefined;
  /** Which delivery this is: 1 on the first, higher after a lease expiry or a failure. */
  readonly attempt: number;
  /** Names this delivery; sent with every call so that a stale one changes nothing. */
  readonly runId: string;
  /** The lease length in seconds. */
  readonly timeout: number;
  readonly maxRetries: number;
  /** When the job became due (RFC 3339). */
  readonly runAt: string;
  /**
   * Aborts when the worker lets go of the job: the lease was lost (reason: LeaseLostError) or
   * `stop()` stopped waiting for it (reason: WorkerStoppedError). Pass it to fetch and friends.
   */
  readonly signal: AbortSignal;
  /**
   * Renews the lease now. With `state`, also stores it as the job's checkpoint; later interval
   * heartbeats send it again. Rejects with a LeaseLostError when the lease was lost.
   */
  heartbeat(state?: S): Promise<void>;
  /**
   * Releases the job with new settings; `process` resolving afterwards no longer completes it.
   * Omitted fields keep the job's values (`state`: the latest state); `runAt` omitted is now.
   */
  reschedule(options?: RescheduleOptions<P, S>): Promise<void>;
  /**
   * Fails the job now: it counts a retry and comes back after `retryIn` seconds (default the
   * server's backoff, min(2^(attempt−1), 3600) s) or, when its retries are used up, moves to the
   * failed jobs with `error`'s message as the reason.
   */
  fail(error?: unknown, retryIn?: number): Promise<void>;
}

export interface RescheduleOptions<P = unknown, S = unknown> {
  /** When the job may run again: a Date or an RFC 3339 string. Default now. */
  runAt?: RunAtInput;
  /** Lease length in seconds. Default the job's. */
  timeout?: number;
  /** A new retry budget. Default the job's `maxRetries`. */
  maxRetries?: number;
  /** Default the job's payload. */
  payload?: P;
  /** Default the latest state; `undefined` given explicitly clears it. */
  state?: S;
}

/** What a job reports to the worker that runs it. */
export interface JobContext<P, S> {
  client: RelayClient<P, S>;
  /** Milliseconds between interval heartbeats. */
  heartbeatIntervalMs: number;
  onLeaseLost(job: RunningJob<P, S>, error: LeaseLostError): void;
  onHeartbeatError(job: RunningJob<P, S>, error: unknown): void;
  onRescheduled(job: RunningJob<P, S>): void;
  onFailed(job: RunningJob<P, S>, error: unknown, result: FailResult | undefined): void;
}

/**
 * - running: `process` is running; heartbeats tick.
 * - returned: `process` returned or threw; the worker completes or fails the job.
 * - rescheduled / failed / completed: settled on the server.
 * - lost: the server said this delivery no longer holds the job.
 * - abandoned: `stop()` stopped waiting; the job stays leased until it expires.
 */
export type JobStatus = 'running' | 'returned' | 'rescheduled' | 'failed' | 'completed' | 'lost' | 'abandoned';

/** The most the server keeps of a failure's reason (openapi.yaml: FailRequest.error). */
const MAX_ERROR_LENGTH = 65_536;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** The reason sent for a failure: the error's message, as text the database accepts. */
export function errorMessage(error: unknown): string {
  let text: string;
  if (error instanceof Error) text = error.message || error.name;
  else if (typeof error === 'string') text = error;
  else {
    try {
      text = JSON.stringify(error) ?? String(error);
    } catch {
      text = String(error);
    }
  }
  // A NUL or a lone surrogate would make PostgreSQL refuse the whole call (422).
  text = text.replace(/\u0000/g, '\uFFFD').replace(LONE_SURROGATE, '\uFFFD');
  if (text.length > MAX_ERROR_LENGTH) text = Array.from(text).slice(0, MAX_ERROR_LENGTH - 1).join('') + '…';
  return text;
}

export class RunningJob<P = unknown, S = unknown> implements Job<P, S> {
  readonly id: string;
  readonly queue: string;
  readonly payload: P;
  readonly attempt: number;
  readonly runId: string;
  readonly timeout: number;
  readonly maxRetries: number;
  readonly runAt: string;
  /** When the worker received it (ms since the epoch). */
  readonly receivedAt = Date.now();

  #status: JobStatus = 'running';
  /** A reschedule or fail is under way. */
  #settling = false;
  #state: S | undefined;
  /** `heartbeat(state)` was called: interval heartbeats send the state from then on. */
  #stateGiven = false;
  #lost: LeaseLostError | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Calls to the server for this job, one after the other, so that a later state wins. */
  #chain: Promise<unknown> = Promise.resolve();
  readonly #controller = new AbortController();
  readonly #context: JobContext<P, S>;

  constructor(leased: LeasedJob<P, S>, context: JobContext<P, S>) {
    this.id = leased.id;
    this.queue = leased.queue;
    this.payload = leased.payload;
    this.attempt = leased.attempt;
    this.runId = leased.run_id;
    this.timeout = leased.timeout;
    this.maxRetries = leased.max_retries;
    this.runAt = leased.run_at;
    this.#state = leased.state;
    this.#context = context;
    this.#schedule();
  }

  get state(): S | undefined {
    return this.#state;
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get status(): JobStatus {
    return this.#status;
  }

  heartbeat(state?: S): Promise<void> {
    const refused = this.#refusal();
    if (refused) return Promise.reject(refused);
    if (state !== undefined) {
      this.#state = state;
      this.#stateGiven = true;
    }
    return this.#serial(() => this.#beat());
  }

  reschedule(options: RescheduleOptions<P, S> = {}): Promise<void> {
    const refused = this.#refusal();
    if (refused) return Promise.reject(refused);
    const state = 'state' in options ? options.state : this.#state;
    const announce = () => this.#context.onRescheduled(this);
    return this.#serial(() =>
      this.#settle('rescheduled', announce, async () => {
        await this.#context.client.reschedule({
          id: this.id,
          queue: this.queue,
          timeout: options.timeout ?? this.timeout,
          max_retries: options.maxRetries ?? this.maxRetries,
          payload: 'payload' in options ? options.payload : this.payload,
          ...(state === undefined ? {} : { state }),
          ...(options.runAt === undefined ? {} : { run_at: options.runAt }),
          run_id: this.runId,
        });
      }),
    );
  }

  fail(error?: unknown, retryIn?: number): Promise<void> {
    const refused = this.#refusal();
    if (refused) return Promise.reject(refused);
    return this.#serial(() => this.#fail(error, retryIn));
  }

  /** The worker: `process` returned or threw. Stops the heartbeats and waits for calls under way. */
  async returned(): Promise<void> {
    if (this.#status === 'running') this.#status = 'returned';
    this.#clearTimer();
    await this.#chain.catch(() => undefined);
  }

  /** The worker: `process` threw, so fail the job with the error. */
  async failAfterThrow(error: unknown): Promise<void> {
    await this.#fail(error, undefined);
  }

  /** The worker: the job was completed. */
  markCompleted(): void {
    if (this.#status === 'returned' || this.#status === 'abandoned') this.#status = 'completed';
  }

  /** The worker, or a call answered 404: this delivery no longer holds the job. */
  lose(cause: unknown): LeaseLostError {
    if (this.#lost) return this.#lost;
    this.#lost = new LeaseLostError(this.queue, this.id, this.runId, { cause });
    this.#status = 'lost';
    this.#clearTimer();
    this.#controller.abort(this.#lost);
    this.#context.onLeaseLost(this, this.#lost);
    return this.#lost;
  }

  /** The worker's `stop()` gives up on the job: no more heartbeats, the signal aborts, the lease stays. */
  abandon(): void {
    if (this.#status === 'running' || this.#status === 'returned') {
      if (this.#status === 'running') this.#status = 'abandoned';
      this.#clearTimer();
      this.#controller.abort(new WorkerStoppedError(this.queue, this.id));
    }
  }

  /** Why a call from `process` cannot be made now, if it cannot. */
  #refusal(): Error | undefined {
    switch (this.#status) {
      case 'running':
        return undefined;
      case 'lost':
        return this.#lost;
      case 'abandoned':
        return this.#controller.signal.reason as Error;
      case 'rescheduled':
      case 'failed':
      case 'completed':
        return new JobSettledError(this.queue, this.id, this.#status);
      case 'returned':
        return new JobSettledError(this.queue, this.id, 'returned');
    }
  }

  #serial<T>(call: () => Promise<T>): Promise<T> {
    const result = this.#chain.then(call);
    this.#chain = result.catch(() => undefined);
    return result;
  }

  #schedule(): void {
    this.#clearTimer();
    if (this.#status !== 'running' || this.#settling) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#serial(() => this.#beat()).catch((error: unknown) => {
        if (!(error instanceof LeaseLostError) && !(error instanceof JobSettledError) && !(error instanceof WorkerStoppedError)) {
          this.#context.onHeartbeatError(this, error);
        }
      });
    }, timerMs(this.#context.heartbeatIntervalMs));
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #beat(): Promise<void> {
    const refused = this.#refusal();
    if (refused) throw refused;
    this.#clearTimer();
    try {
      const state = this.#stateGiven ? { state: this.#state } : {};
      await this.#context.client.heartbeat(this.queue, this.id, { runId: this.runId, ...state });
    } catch (error) {
      if (error instanceof JobNotFoundError) throw this.lose(error);
      throw error;
    } finally {
      this.#schedule();
    }
  }

  /**
   * Runs a reschedule or fail; on success the job is settled and `announce` reports it, on a
   * 404 the lease is lost, on any other error nothing changed (and the error is thrown).
   */
  async #settle(outcome: 'rescheduled' | 'failed', announce: (result?: FailResult) => void, send: () => Promise<FailResult | void>): Promise<void> {
    if (this.#status !== 'running' && this.#status !== 'returned') {
      const refused = this.#refusal();
      if (refused) throw refused;
    }
    this.#settling = true;
    this.#clearTimer();
    try {
      const result = await send();
      this.#status = outcome;
      announce(result ?? undefined);
    } catch (error) {
      // A 404 after an attempt that may have gone through: most likely that attempt did it.
      if (error instanceof JobNotFoundError && error.afterUncertainAttempt) {
        this.#status = outcome;
        announce(undefined);
        return;
      }
      if (error instanceof JobNotFoundError) throw this.lose(error);
      throw error;
    } finally {
      this.#settling = false;
      this.#schedule();
    }
  }

  #fail(error: unknown, retryIn: number | undefined): Promise<void> {
    return this.#settle(
      'failed',
      (result) => this.#context.onFailed(this, error, result),
      () =>
        this.#context.client.fail(this.queue, this.id, {
          runId: this.runId,
          error: errorMessage(error),
          ...(retryIn === undefined ? {} : { retryIn }),
        }),
    );
  }
}
