/**
 * One delivery of a job while a worker holds it: what `process` receives. It keeps the lease
 * alive with heartbeats, remembers the latest checkpointed state, and sends every call with
 * the delivery's `run_id`, so that a call made after the lease was lost changes nothing.
 *
 * It also keeps its own clock of the lease: the server may hand the job to another worker once
 * the lease ends, whether or not this worker heard of it (heartbeats that cannot get through).
 * The end is counted conservatively, from when the request that started or renewed the lease
 * was sent; when it passes without a heartbeat answered, the lease is treated as lost.
 */
import { performance } from 'node:perf_hooks';
import { JobNotFoundError, type FailResult, type Job, type RelayClient, type RunAtInput } from '@relay-ts/client';
import { timerMs } from './backoff.js';
import { JobSettledError, JobTimeoutError, LeaseLostError, WorkerStoppedError } from './errors.js';

/**
 * A job as `process` receives it: the job as the server delivered it (the client's `Job`, with
 * the wire's field names: `run_id`, `max_retries`, `run_at`), and what `process` can do with
 * it while the worker holds its lease.
 */
export interface ActiveJob<P = unknown, S = unknown> extends Readonly<Omit<Job<P, S>, 'state'>> {
  /** The latest state: as delivered (undefined when none is stored), then as last given to `heartbeat`. */
  readonly state: S | undefined;
  /**
   * Aborts when the worker lets go of the job: the lease was lost (reason: LeaseLostError),
   * `process` ran past `jobTimeoutMs` (reason: JobTimeoutError) or `stop()` stopped waiting for
   * it (reason: WorkerStoppedError). Pass it to fetch and friends.
   */
  readonly signal: AbortSignal;
  /**
   * Renews the lease now. With `state`, also stores it as the job's checkpoint; later interval
   * heartbeats send it again. Rejects with a LeaseLostError when the lease was lost.
   */
  heartbeat(state?: S): Promise<void>;
  /**
   * Releases the job with new settings; `process` resolving afterwards no longer completes it.
   * Omitted fields keep the job's values (`state`: the latest state); `run_at` omitted is now.
   */
  reschedule(options?: RescheduleOptions<P, S>): Promise<void>;
  /**
   * Fails the job now: it counts a retry and comes back after `retryInSeconds` (default the
   * server's backoff, min(2^(attempt−1), 3600) s) or, when its retries are used up, moves to
   * the failed jobs with `error`'s message as the reason.
   */
  fail(error?: unknown, retryInSeconds?: number): Promise<void>;
}

/** The new settings of `job.reschedule()`: the fields of the wire's reschedule request that a job may change. */
export interface RescheduleOptions<P = unknown, S = unknown> {
  /** When the job may run again: a Date or an RFC 3339 string. Default now. */
  run_at?: RunAtInput;
  /** Lease length in seconds. Default the job's. */
  timeout?: number;
  /** A new retry budget. Default the job's `max_retries`. */
  max_retries?: number;
  /** Default the job's payload. */
  payload?: P;
  /** Default the latest state; `undefined` given explicitly clears it. */
  state?: S;
}

/** What a job reports to the worker that runs it. */
export interface JobContext<P, S> {
  client: RelayClient<P, S>;
  /** Milliseconds between interval heartbeats (sooner when the lease would end first). */
  heartbeatIntervalMs: number;
  /** The least delay before a heartbeat that is brought forward because the lease ends soon. */
  minHeartbeatIntervalMs: number;
  onLeaseLost(job: RunningJob<P, S>, error: LeaseLostError): void;
  onHeartbeatError(job: RunningJob<P, S>, error: unknown): void;
  /** A heartbeat was answered: the lease is renewed. */
  onHeartbeat(job: RunningJob<P, S>): void;
  onRescheduled(job: RunningJob<P, S>): void;
  onFailed(job: RunningJob<P, S>, error: unknown, result: FailResult | undefined): void;
}

/**
 * - running: `process` is running (or the job waits for a slot); heartbeats tick, the lease clock runs.
 * - returned: `process` returned or threw; the worker completes or fails the job.
 * - timedOut: `process` ran past `jobTimeoutMs`; the worker fails the job.
 * - rescheduled / failed / completed: settled on the server.
 * - lost: the server said this delivery no longer holds the job, or the lease ran out unrenewed.
 * - abandoned: `stop()` stopped waiting; the job stays leased until it expires.
 */
export type JobStatus = 'running' | 'returned' | 'timedOut' | 'rescheduled' | 'failed' | 'completed' | 'lost' | 'abandoned';

/** A monotonic clock: a lease must not stretch or shrink when the wall clock is set. */
const now = () => performance.now();

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

export class RunningJob<P = unknown, S = unknown> implements ActiveJob<P, S> {
  readonly id: string;
  readonly queue: string;
  readonly payload: P;
  readonly attempt: number;
  readonly run_id: string;
  readonly timeout: number;
  readonly max_retries: number;
  readonly run_at: string;
  readonly traceparent: string | undefined;
  /** When the worker received it (ms since the epoch). */
  readonly receivedAt = Date.now();

  #status: JobStatus = 'running';
  /** A reschedule or fail is under way. */
  #settling = false;
  #state: S | undefined;
  /** `heartbeat(state)` was called: interval heartbeats send the state from then on. */
  #stateGiven = false;
  #lost: LeaseLostError | undefined;
  /** The next interval heartbeat. */
  #timer: NodeJS.Timeout | undefined;
  /** When the lease ends at the latest as far as this worker knows (performance.now() ms). */
  #leaseEndsAt: number;
  /** Fires at #leaseEndsAt. */
  #leaseTimer: NodeJS.Timeout | undefined;
  /** Settles when the job may start: at once, or once a heartbeat confirmed a lease that arrived nearly spent. */
  readonly #ready: Promise<void>;
  /** Calls to the server for this job, one after the other, so that a later state wins. */
  #chain: Promise<unknown> = Promise.resolve();
  readonly #controller = new AbortController();
  readonly #context: JobContext<P, S>;

  /**
   * @param leasedAt when the poll that delivered the job was sent (performance.now() ms): the
   *   server started the lease after that, never before.
   */
  constructor(leased: Job<P, S>, context: JobContext<P, S>, leasedAt: number) {
    this.id = leased.id;
    this.queue = leased.queue;
    this.payload = leased.payload;
    this.attempt = leased.attempt;
    this.run_id = leased.run_id;
    this.timeout = leased.timeout;
    this.max_retries = leased.max_retries;
    this.run_at = leased.run_at;
    this.traceparent = leased.traceparent;
    this.#state = leased.state;
    this.#context = context;
    this.#leaseEndsAt = leasedAt + this.timeout * 1000;
    if (this.#leaseEndsAt - now() >= (this.timeout * 1000) / 2) {
      this.#ready = Promise.resolve();
      this.#armClock();
      this.#schedule();
    } else {
      // A long poll held longer than half the lease: the server claimed the job some time
      // between the poll and its answer, so the lease may be nearly over (or, by the
      // conservative count, already). A heartbeat settles it before `process` starts.
      this.#ready = this.#confirm();
    }
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

  /** The worker: resolves when `process` may start (check `status` then); never rejects. */
  ready(): Promise<void> {
    return this.#ready;
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
          max_retries: options.max_retries ?? this.max_retries,
          payload: 'payload' in options ? options.payload : this.payload,
          ...(state === undefined ? {} : { state }),
          ...(options.run_at === undefined ? {} : { run_at: options.run_at }),
          run_id: this.run_id,
        });
      }),
    );
  }

  fail(error?: unknown, retryInSeconds?: number): Promise<void> {
    const refused = this.#refusal();
    if (refused) return Promise.reject(refused);
    return this.#serial(() => this.#fail(error, retryInSeconds));
  }

  /** The worker: `process` returned or threw. Stops the heartbeats and waits for calls under way. */
  async returned(): Promise<void> {
    if (this.#status === 'running') this.#status = 'returned';
    this.#clearTimer();
    this.#clearClock();
    await this.#chain.catch(() => undefined);
  }

  /** The worker: `process` threw, so fail the job with the error. */
  async failAfterThrow(error: unknown): Promise<void> {
    await this.#fail(error, undefined);
  }

  /**
   * The worker: `process` ran past its time limit. Stops the heartbeats, aborts the signal with
   * `error` and fails the job with it, after any call under way. False when the job was no
   * longer running (then nothing is done).
   */
  timeLimitReached(error: JobTimeoutError): Promise<void> | false {
    if (this.#status !== 'running') return false;
    this.#status = 'timedOut';
    this.#clearTimer();
    this.#clearClock();
    this.#controller.abort(error);
    return this.#serial(() => this.#fail(error, undefined));
  }

  /** The worker: the job was completed. */
  markCompleted(): void {
    if (this.#status === 'returned' || this.#status === 'abandoned') this.#status = 'completed';
  }

  /** The worker, or a call answered 404: this delivery no longer holds the job. */
  lose(cause: unknown): LeaseLostError {
    if (this.#lost) return this.#lost;
    this.#lost = new LeaseLostError(this.queue, this.id, this.run_id, { cause });
    this.#status = 'lost';
    this.#clearTimer();
    this.#clearClock();
    this.#controller.abort(this.#lost);
    this.#context.onLeaseLost(this, this.#lost);
    return this.#lost;
  }

  /** The worker's `stop()` gives up on the job: no more heartbeats, the signal aborts, the lease stays. */
  abandon(): void {
    if (this.#status === 'running' || this.#status === 'returned') {
      if (this.#status === 'running') this.#status = 'abandoned';
      this.#clearTimer();
      this.#clearClock();
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
      case 'timedOut':
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

  /**
   * The next interval heartbeat: after the interval, or after half of what is left of the lease
   * when that comes first (an interval longer than the lease, or heartbeats that failed), so
   * that a heartbeat can renew the lease before the clock ends it.
   */
  #schedule(): void {
    this.#clearTimer();
    if (this.#status !== 'running' || this.#settling) return;
    const { heartbeatIntervalMs, minHeartbeatIntervalMs } = this.#context;
    const delay = Math.min(heartbeatIntervalMs, Math.max((this.#leaseEndsAt - now()) / 2, minHeartbeatIntervalMs));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#serial(() => this.#beat()).catch((error: unknown) => {
        if (!isLetGo(error)) this.#context.onHeartbeatError(this, error);
      });
    }, timerMs(delay));
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Runs the lease clock to #leaseEndsAt; the lease is lost when it gets there while the job runs. */
  #armClock(): void {
    this.#clearClock();
    if (this.#status !== 'running') return;
    const left = this.#leaseEndsAt - now();
    if (left <= 0) return this.#expire();
    // Checked again when it fires: a lease longer than setTimeout's longest delay takes several.
    this.#leaseTimer = setTimeout(() => {
      this.#leaseTimer = undefined;
      this.#armClock();
    }, timerMs(Math.ceil(left)));
  }

  #clearClock(): void {
    if (this.#leaseTimer !== undefined) clearTimeout(this.#leaseTimer);
    this.#leaseTimer = undefined;
  }

  #expire(): void {
    // A reschedule or fail under way decides (its 404 loses the lease); the clock resumes after it.
    if (this.#status !== 'running' || this.#settling) return;
    this.lose(new Error(`no heartbeat was answered within the lease (${this.timeout} s from the last request that started or renewed it)`));
  }

  /** The first heartbeat of a lease that arrived nearly spent; `process` starts after it, if the lease holds. */
  async #confirm(): Promise<void> {
    try {
      await this.#serial(() => this.#beat());
    } catch {
      // A 404 lost the lease; for any other failure, the clock below decides.
    }
    this.#armClock();
  }

  async #beat(): Promise<void> {
    const refused = this.#refusal();
    if (refused) throw refused;
    this.#clearTimer();
    const sentAt = now();
    try {
      const state = this.#stateGiven ? { state: this.#state } : {};
      await this.#context.client.heartbeat(this.queue, this.id, {
        runId: this.run_id,
        ...state,
        // Ends when the lease is lost (by the clock, too): an answer after that changes nothing here.
        signal: this.#controller.signal,
        // No retry starts after the lease has ended: it could no longer renew it.
        retry: { maxElapsedMs: Math.max(0, this.#leaseEndsAt - sentAt) },
      });
      if (this.#status === 'running') {
        this.#leaseEndsAt = Math.max(this.#leaseEndsAt, sentAt + this.timeout * 1000);
        this.#armClock();
      }
      this.#context.onHeartbeat(this);
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
    if (this.#status !== 'running' && this.#status !== 'returned' && this.#status !== 'timedOut') {
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
      this.#armClock();
      this.#schedule();
    }
  }

  #fail(error: unknown, retryIn: number | undefined): Promise<void> {
    return this.#settle(
      'failed',
      (result) => this.#context.onFailed(this, error, result),
      () =>
        this.#context.client.fail(this.queue, this.id, {
          runId: this.run_id,
          error: errorMessage(error),
          ...(retryIn === undefined ? {} : { retryIn }),
        }),
    );
  }
}

/** The reasons a call for a job is refused or cut short because the worker let go of it: not worth reporting. */
function isLetGo(error: unknown): boolean {
  return error instanceof LeaseLostError || error instanceof JobSettledError || error instanceof WorkerStoppedError || error instanceof JobTimeoutError;
}
