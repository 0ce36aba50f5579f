/**
 * The worker runtime: a poll loop that leases at most as many jobs as it has free slots
 * (plus `prefetch` waiting for one), runs each in `process` under p-limit, keeps it alive
 * with heartbeats, and completes it when `process` resolves or fails it when `process`
 * throws. `stop()` ends polling at once and waits for the jobs in hand.
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { RelayError, RetryableError, RouteNotFoundError, type FailResult, type Job, type RetryEvent } from '@relay-ts/client';
import pLimit, { type LimitFunction } from 'p-limit';
import { equalJitterBackoff, pause, timerMs } from './backoff.js';
import { Completer, mayHaveGoneThrough, type CarriedCompletions } from './completions.js';
import { JobTimeoutError, type LeaseLostError } from './errors.js';
import { RunningJob, type ActiveJob, type JobContext } from './job.js';
import { log, type Logger } from './logger.js';
import { instrument } from './metrics.js';
import { AutoPrefetch, MAX_AHEAD } from './prefetch.js';
import { resolveSettings, workerDefaults, type ProcessFunction, type StartOptions, type WorkerOptions, type WorkerSettings } from './options.js';
import { inHandlerSpan } from './tracing.js';

/** The events a worker emits, with their arguments. A listener that throws is logged and ignored. */
export interface WorkerEvents<P = unknown, S = unknown> {
  /** `process` is about to be called for the job. */
  started: [job: ActiveJob<P, S>];
  /** `process` returned or threw (`error`, undefined when it returned), after `durationMs`. */
  processed: [job: ActiveJob<P, S>, durationMs: number, error: unknown];
  /** A heartbeat of the job was answered: its lease is renewed. */
  heartbeat: [job: ActiveJob<P, S>];
  /** The server removed the job after `process` resolved; `durationMs` from receiving it to completion. */
  completed: [job: ActiveJob<P, S>, durationMs: number];
  /**
   * The job was failed on the server, because `process` threw `error` or called `job.fail(error)`.
   * `result` says whether it is retrying (and from when) or moved to the failed jobs; it is
   * undefined when the answer was lost and a retry found the failure already recorded.
   */
  failed: [job: ActiveJob<P, S>, error: unknown, result: FailResult | undefined];
  /** `job.reschedule()` released the job. */
  rescheduled: [job: ActiveJob<P, S>];
  /**
   * This delivery no longer holds the job: the server said so (a 404), or the lease ended by
   * the worker's clock with no heartbeat answered. Its signal aborted; nothing more is sent for it.
   */
  leaseLost: [job: ActiveJob<P, S>, error: LeaseLostError];
  /**
   * A heartbeat, completion or failure of the job could not be sent (after the client's
   * retries). Interval heartbeats go on; a job that could not be completed or failed comes back
   * when its lease expires, unless an attempt whose answer was lost did complete or fail it
   * (`error.afterUncertainAttempt`, its cause in `error.uncertainAttemptError`).
   */
  requestError: [job: ActiveJob<P, S>, error: unknown, operation: 'heartbeat' | 'complete' | 'fail'];
  /** A poll failed; the next one is in `retryInMs`. */
  pollError: [error: unknown, retryInMs: number];
  /** `stop()` finished. */
  stopped: [];
}

type EventArgs<P, S, K extends keyof WorkerEvents<P, S>> = WorkerEvents<P, S>[K];

/**
 * Where the worker stands: `idle` before `start()` and after `stop()` has finished, `running`
 * while it polls, `stopping` from `stop()` until the jobs in hand are done or given up.
 */
export type WorkerStatus = 'idle' | 'running' | 'stopping';

/** The jobs a worker holds now, by where they are; their sum is the leases it holds. */
export interface WorkerJobCounts {
  /** In `process`: the slots taken (at most `concurrency`). */
  processing: number;
  /** Prefetched, leased and waiting for a slot (at most `prefetch`, or what 'auto' holds ahead). */
  waiting: number;
  /** `process` returned; the completion or failure is on its way to the server. */
  settling: number;
}

/**
 * Give `process` as an option (`new Worker({ queue, baseUrl, process })`), or subclass it and
 * implement the `process` method. The options are checked by the constructor and readable as
 * `this.settings` (defaults filled in), also inside `process`.
 */
export class Worker<P = unknown, S = unknown> extends EventEmitter<WorkerEvents<P, S>> {
  /** The options as the worker runs with them: the defaults filled in, frozen. */
  readonly settings: WorkerSettings<P, S>;

  readonly #process: ProcessFunction<P, S> | undefined;
  #status: WorkerStatus = 'idle';
  #limit: LimitFunction | undefined;
  #completer: Completer | undefined;
  /** With `prefetch: 'auto'`: how many jobs to lease ahead of the slots. */
  #autoPrefetch: AutoPrefetch | undefined;
  /** Aborted by stop(): ends the poll under way and any backoff pause. */
  #polling = new AbortController();
  /** Aborted by a second signal: stop() stops waiting for jobs. */
  #forced = new AbortController();
  #loop: Promise<void> = Promise.resolve();
  #stopped: Promise<void> | undefined;
  /** The jobs in hand (leased and not yet settled), each with the task that runs it. */
  readonly #jobs = new Map<RunningJob<P, S>, Promise<void>>();
  /**
   * How many jobs are in `process` or waiting for a slot (prefetched). A job leaves when its
   * handler returns, before its completion reaches the server: the next poll then overlaps
   * the completion instead of waiting for it, and the run_id fence keeps a late completion
   * safe.
   */
  #held = 0;
  /** Wakes the poll loop: a slot was freed, a poll was answered, or stop() came. */
  #wake: (() => void) | undefined;
  #removeSignalHandlers: (() => void) | undefined;
  /** The metrics listening to this worker's events: set up once, by the first start(). */
  #instrumented: Promise<void> | undefined;

  /** Throws a TypeError when an option is missing or out of range. */
  constructor(options: WorkerOptions<P, S>) {
    super();
    this.settings = resolveSettings(options);
    this.#process = options.process;
  }

  /**
   * Does the work of one job. Resolving completes the job (unless it was rescheduled or
   * failed); throwing fails it with the error's message. Override it in a subclass, or give
   * the `process` option.
   */
  process(job: ActiveJob<P, S>): Promise<void> {
    if (this.#process === undefined) return Promise.reject(new TypeError('the worker has no process: give the process option or override process()'));
    return this.#process(job);
  }

  get status(): WorkerStatus {
    return this.#status;
  }

  /** How many jobs the worker holds now, by where they are. */
  get jobs(): WorkerJobCounts {
    const processing = this.#limit?.activeCount ?? 0;
    const waiting = this.#limit?.pendingCount ?? 0;
    return { processing, waiting, settling: Math.max(0, this.#jobs.size - processing - waiting) };
  }

  /** Starts polling; resolves once the first poll is under way. */
  async start(options: StartOptions = {}): Promise<void> {
    if (this.#status !== 'idle') throw new Error(`the worker is already ${this.#status}`);
    const overridden = this.process !== Worker.prototype.process;
    if (overridden === (this.#process !== undefined)) {
      throw new TypeError(overridden ? 'give process either as an option or as a method, not both' : 'the worker has no process: give the process option or override process()');
    }
    const settings = this.settings;
    if (settings.metrics) {
      this.#instrumented ??= instrument(this, settings.queue, settings.metrics).catch((error: unknown) => {
        this.#instrumented = undefined;
        throw error;
      });
      await this.#instrumented;
      // Another start() may have gone ahead meanwhile.
      if (this.#status !== 'idle') throw new Error(`the worker is already ${this.#status}`);
    }
    this.#limit = pLimit(settings.concurrency);
    this.#autoPrefetch = settings.prefetch === 'auto' ? new AutoPrefetch(settings.concurrency) : undefined;
    // Nothing else can join a batch of completions while no handler is running.
    this.#completer = new Completer(settings.client, settings.completionBatchWindowMs, () => this.#held === 0, settings.settleOnPoll);
    this.#polling = new AbortController();
    this.#forced = new AbortController();
    this.#stopped = undefined;
    this.#status = 'running';
    if (options.handleSignals) this.#handleSignals();
    let polling!: () => void;
    const firstPoll = new Promise<void>((resolve) => (polling = resolve));
    this.#loop = this.#poll(settings, polling).catch((error: unknown) => {
      log(settings.logger, 'error', 'the poll loop ended unexpectedly', { queue: settings.queue, error });
    });
    log(settings.logger, 'info', 'worker started', { queue: settings.queue, concurrency: settings.concurrency, prefetch: settings.prefetch, waitSeconds: settings.waitSeconds });
    await firstPoll;
  }

  /**
   * Stops polling at once (a long poll under way is aborted), waits up to `shutdownTimeoutMs`
   * for the jobs in hand to finish, then aborts the signals of those still running and
   * returns; they stay leased and come back when their lease expires. Calling it again
   * returns the same promise.
   */
  stop(): Promise<void> {
    if (this.#status === 'idle') return this.#stopped ?? Promise.resolve();
    if (this.#status === 'running') {
      this.#status = 'stopping';
      this.#stopped = this.#shutdown();
    }
    return this.#stopped!;
  }

  async #shutdown(): Promise<void> {
    const settings = this.settings;
    log(settings.logger, 'info', 'worker stopping', { queue: settings.queue, jobs: this.jobs });
    this.#polling.abort();
    this.#wake?.();
    await this.#loop;
    this.#completer?.flush();
    const finished = Promise.allSettled([...this.#jobs.values()]).then(() => true);
    // Ends the timer once the jobs finished, so that it does not keep the process alive.
    const timer = new AbortController();
    const onForced = () => timer.abort();
    this.#forced.signal.addEventListener('abort', onForced, { once: true });
    const gaveUp = pause(settings.shutdownTimeoutMs, timer.signal).then(() => false);
    const allFinished = await Promise.race([finished, gaveUp]);
    timer.abort();
    this.#forced.signal.removeEventListener('abort', onForced);
    if (!allFinished) {
      const left = [...this.#jobs.keys()];
      for (const job of left) job.abandon();
      log(settings.logger, 'warn', 'stopped without waiting for jobs still running; they stay leased until their lease expires', {
        queue: settings.queue,
        jobs: left.map((j) => j.id),
      });
    }
    this.#removeSignalHandlers?.();
    this.#removeSignalHandlers = undefined;
    this.#status = 'idle';
    log(settings.logger, 'info', 'worker stopped', { queue: settings.queue });
    this.#emit('stopped');
  }

  #handleSignals(): void {
    const onSignal = (signal: NodeJS.Signals) => {
      const { logger, queue } = this.settings;
      if (this.#status === 'running') {
        log(logger, 'info', `${signal}: stopping`, { queue });
        void this.stop();
      } else if (this.#status === 'stopping') {
        log(logger, 'warn', `${signal} again: stopping without waiting for jobs`, { queue });
        this.#forced.abort();
      }
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    this.#removeSignalHandlers = () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    };
  }

  /**
   * Leases jobs for the free slots. Idle, one poll is under way at a time (a long poll with
   * the default `waitSeconds`). Under a backlog (the last poll was answered with every job it
   * asked for), slots freed while a poll is under way get a second one at once instead of
   * waiting for the first to come back. Never asks for more jobs than its slots hold: jobs
   * held plus jobs asked for stay within `concurrency` + `prefetch` (with 'auto', what
   * AutoPrefetch holds ahead at the moment). The free slots are not split over two polls on
   * purpose: that only adds requests per job (see the bench).
   *
   * With `settleOnPoll`, a poll sent under a backlog takes the completions waiting when it is
   * sent and carries them (see #carry): the poll for the slots that finished jobs freed goes
   * out on the turn after they finished, so their completions ride on it instead of costing a
   * request of their own.
   */
  async #poll(settings: WorkerSettings<P, S>, polling: () => void): Promise<void> {
    const { client, queue, concurrency, prefetch, waitSeconds, pollIntervalMs, maxPollIntervalMs, logger } = settings;
    const stop = this.#polling.signal;
    const underWay = new Set<Promise<void>>();
    let asked = 0;
    let backlog = false;
    let empty = 0;
    let errors = 0;
    /** Set by an answer: how long to wait before the next poll. */
    let pauseMs = 0;
    /** Whether polls carry completions; cleared when the server has no `POST /v1/next`. */
    let carry = settings.settleOnPoll;

    const send = (numJobs: number) => {
      asked += numJobs;
      const sentAt = Date.now();
      // The leases of the jobs it brings began after this, never before.
      const leasedAt = performance.now();
      const poll = () => client.next(queue, { numJobs, wait: waitSeconds, signal: stop });
      // Only under a backlog: on a quiet queue a carrying poll (wait 0) comes back empty and
      // the long poll goes a round trip later, so a job enqueued meanwhile waits in the table
      // instead of being handed over; the completions then go on their own beside the long poll.
      const carried = carry && backlog ? this.#completer!.take() : undefined;
      const noRoute = () => {
        carry = false;
        this.#completer!.stopSettlingOnPoll();
        log(logger, 'warn', 'the server has no POST /v1/next: completions go on their own from now on', { queue });
      };
      const request = carried ? this.#carry(carried, numJobs, settings, noRoute, poll) : poll();
      const settled = request.then(
        (jobs) => {
          errors = 0;
          backlog = jobs.length === numJobs;
          if (backlog) this.#autoPrefetch?.roundTrip(performance.now() - leasedAt);
          if (jobs.length > 0) {
            empty = 0;
            // Dispatched even when stop() came meanwhile: a job in hand is never dropped.
            for (const leased of jobs) this.#dispatch(leased, settings, leasedAt);
          } else if (carried) {
            // It did not wait on the server (see #carry): not an early empty answer. The next
            // poll, a long one, goes at once.
            empty = 0;
          } else if (waitSeconds > 0 && Date.now() - sentAt >= waitSeconds * 900) {
            // A long poll that the server held for its whole wait is the idle rhythm: poll again.
            empty = 0;
          } else {
            // An empty answer that came early (wait 0, or a server or proxy that does not hold
            // requests) backs off, so that nothing spins.
            empty++;
            pauseMs = Math.max(pauseMs, equalJitterBackoff(empty, pollIntervalMs, maxPollIntervalMs));
          }
        },
        (error: unknown) => {
          backlog = false;
          if (stop.aborted) return;
          errors++;
          const retryAfter = error instanceof RetryableError ? (error.retryAfterMs ?? 0) : 0;
          const delay = Math.max(equalJitterBackoff(errors, pollIntervalMs, maxPollIntervalMs), retryAfter);
          log(logger, 'warn', 'poll failed', { queue, error, retryInMs: delay });
          this.#emit('pollError', error, delay);
          pauseMs = Math.max(pauseMs, delay);
        },
      );
      underWay.add(settled);
      void settled.finally(() => {
        asked -= numJobs;
        underWay.delete(settled);
        this.#wake?.();
      });
    };

    try {
      while (!stop.aborted) {
        if (pauseMs > 0 && underWay.size === 0) {
          const delay = pauseMs;
          pauseMs = 0;
          await pause(delay, stop);
          continue;
        }
        const ahead = this.#autoPrefetch?.ahead ?? (prefetch === 'auto' ? 0 : prefetch);
        const free = concurrency + ahead - this.#held - asked;
        if (free > 0 && pauseMs === 0 && underWay.size < (backlog ? 2 : 1)) {
          // A poll for more than a server answers at its default limit would never read as a backlog.
          send(Math.min(free, MAX_AHEAD));
          polling();
          continue;
        }
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
        // Jobs that finish together free their slots within one turn of the event loop:
        // one poll for all of them, not one for the first slot and another for the rest.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      // Answers still coming are dispatched (see above) before the loop counts as ended.
      await Promise.all(underWay);
    } finally {
      polling();
    }
  }

  /**
   * A poll that carries completions (`POST /v1/next`). It does not wait on the server: their
   * outcomes come back at once, never held by a long poll on an idle queue, and stop() does not
   * abort it, so they are not left in doubt. When it fails, they go on their own, each one
   * found gone then counted as completed if the poll may have gone through. A server without
   * the route gets a plain poll instead (noRoute turns the carrying off).
   */
  async #carry(
    carried: CarriedCompletions,
    numJobs: number,
    settings: WorkerSettings<P, S>,
    noRoute: () => void,
    poll: () => Promise<Job<P, S>[]>,
  ): Promise<Job<P, S>[]> {
    let uncertain = false;
    const onRetry = (event: RetryEvent) => {
      if (event.uncertain) uncertain = true;
    };
    try {
      const { jobs, settled } = await settings.client.settleAndNext(settings.queue, { numJobs, complete: carried.deliveries, retry: { onRetry } });
      carried.settled(settled, uncertain);
      return jobs;
    } catch (error) {
      const routeMissing = error instanceof RouteNotFoundError || (error instanceof RelayError && error.status === 405);
      // First, so that the completions go as to a server without it (each alone with no window).
      if (routeMissing) noRoute();
      carried.unsent(mayHaveGoneThrough(error, uncertain));
      if (routeMissing) return poll();
      throw error;
    }
  }

  #dispatch(leased: Job<P, S>, settings: WorkerSettings<P, S>, leasedAt: number): void {
    const context: JobContext<P, S> = {
      client: settings.client,
      heartbeatIntervalMs: settings.heartbeatIntervalMs ?? Math.max(workerDefaults.minHeartbeatIntervalMs, (leased.timeout * 1000) / 3),
      minHeartbeatIntervalMs: Math.min(settings.heartbeatIntervalMs ?? Infinity, workerDefaults.minHeartbeatIntervalMs),
      onLeaseLost: (job, error) => {
        log(settings.logger, 'warn', 'lease lost', { queue: job.queue, jobId: job.id, runId: job.run_id, reason: error.cause });
        this.#emit('leaseLost', job, error);
      },
      onHeartbeat: (job) => this.#emit('heartbeat', job),
      onHeartbeatError: (job, error) => {
        log(settings.logger, 'warn', 'heartbeat failed', { queue: job.queue, jobId: job.id, error });
        this.#emit('requestError', job, error, 'heartbeat');
      },
      onRescheduled: (job) => {
        log(settings.logger, 'debug', 'job rescheduled', { queue: job.queue, jobId: job.id });
        this.#emit('rescheduled', job);
      },
      onFailed: (job, error, result) => {
        // Failed for good is an error someone has to look at; a failure that is retried is a warning.
        const [level, message] = result?.outcome === 'failed'
          ? (['error', 'job failed for good: moved to the failed jobs'] as const)
          : (['warn', 'job failed; it will be retried'] as const);
        const fields = { queue: job.queue, jobId: job.id, attempt: job.attempt, error, outcome: result?.outcome, runAt: result?.outcome === 'retrying' ? result.run_at : undefined };
        log(settings.logger, level, message, fields);
        this.#emit('failed', job, error, result);
      },
    };
    this.#autoPrefetch?.leased(leased.timeout * 1000);
    const job = new RunningJob(leased, context, leasedAt);
    let slotTaken = true;
    this.#held++;
    const freeSlot = () => {
      if (!slotTaken) return;
      slotTaken = false;
      this.#held--;
      this.#wake?.();
    };
    const task = this.#run(job, settings, freeSlot)
      .catch((error: unknown) => log(settings.logger, 'error', 'unexpected error running a job', { queue: job.queue, jobId: job.id, error }))
      .finally(() => {
        this.#jobs.delete(job);
        freeSlot();
      });
    this.#jobs.set(job, task);
  }

  async #run(job: RunningJob<P, S>, settings: WorkerSettings<P, S>, freeSlot: () => void): Promise<void> {
    const { logger } = settings;
    let threw = false;
    let thrown: unknown;
    // The limit holds the handler only: a job's completion or failure is sent after its slot
    // went to the next job, or the slowest completion would hold back every new job.
    let timedOut: Promise<void> | undefined;
    await this.#limit!(async () => {
      await job.ready();
      // A prefetched job that stop() gave up on while it waited for its slot never starts, nor
      // one whose lease was lost meanwhile.
      if (job.status !== 'running') return;
      log(logger, 'debug', 'job started', { queue: job.queue, jobId: job.id, attempt: job.attempt });
      this.#emit('started', job);
      const { jobTimeoutMs } = settings;
      const limit = jobTimeoutMs === undefined ? undefined : setTimeout(() => {
        const error = new JobTimeoutError(job.queue, job.id, jobTimeoutMs);
        const failing = job.timeLimitReached(error);
        if (failing) timedOut = this.#failTimedOut(job, failing, settings);
      }, timerMs(jobTimeoutMs));
      const started = performance.now();
      try {
        await inHandlerSpan(job, () => this.process(job));
      } catch (error) {
        threw = true;
        thrown = error;
      } finally {
        clearTimeout(limit);
      }
      const handlerMs = performance.now() - started;
      this.#autoPrefetch?.handled(handlerMs);
      this.#emit('processed', job, handlerMs, thrown);
      await job.returned();
    });
    // Freed here, in the same turn as the completion below is handed to the completer: a
    // completer that sees no slot taken sends its batch at once.
    freeSlot();
    if (timedOut) await timedOut;
    // Rescheduled or failed by the handler, lease lost, or given up by stop(): nothing to send.
    if (job.status !== 'returned') return;
    if (threw) {
      try {
        await job.failAfterThrow(thrown);
      } catch (error) {
        if (job.status === 'returned') {
          log(logger, 'warn', unsentMessage('fail', error), { queue: job.queue, jobId: job.id, ...uncertainty(error), error });
          this.#emit('requestError', job, error, 'fail');
        }
      }
      return;
    }
    try {
      const outcome = await this.#completer!.complete(job.queue, job.id, job.run_id);
      if (outcome === 'not_found') {
        job.lose(new Error('the completion found no job held by this delivery'));
        return;
      }
      job.markCompleted();
      log(logger, 'debug', 'job completed', { queue: job.queue, jobId: job.id });
      this.#emit('completed', job, Date.now() - job.receivedAt);
    } catch (error) {
      log(logger, 'warn', unsentMessage('complete', error), { queue: job.queue, jobId: job.id, ...uncertainty(error), error });
      this.#emit('requestError', job, error, 'complete');
    }
  }

  /** Waits for the failure a time limit sent, reporting it when it could not be sent. */
  async #failTimedOut(job: RunningJob<P, S>, failing: Promise<void>, settings: WorkerSettings<P, S>): Promise<void> {
    log(settings.logger, 'warn', 'job ran past jobTimeoutMs: its signal is aborted and it is failed', { queue: job.queue, jobId: job.id, jobTimeoutMs: settings.jobTimeoutMs });
    try {
      await failing;
    } catch (error) {
      if (job.status === 'timedOut') {
        log(settings.logger, 'warn', unsentMessage('fail', error), { queue: job.queue, jobId: job.id, ...uncertainty(error), error });
        this.#emit('requestError', job, error, 'fail');
      }
    }
  }

  #emit<K extends keyof WorkerEvents<P, S>>(event: K, ...args: EventArgs<P, S, K>): void {
    try {
      (this.emit as (event: K, ...args: EventArgs<P, S, K>) => boolean)(event, ...args);
    } catch (error) {
      log(this.settings.logger, 'error', `a listener of ${String(event)} threw`, { error });
    }
  }
}

/**
 * What the log says when a completion or failure could not be sent. After an attempt whose
 * answer was lost, the server may have carried it out: the job may be gone (completed) or
 * failed already, so "it comes back" would not be true, and the cause of that doubt (a reset
 * connection, a timeout), not only the last attempt's error, is what the reader needs.
 */
function unsentMessage(operation: 'complete' | 'fail', error: unknown): string {
  const done = operation === 'complete' ? 'completed' : 'failed';
  const doubt = error instanceof RelayError ? error.uncertainAttemptError : undefined;
  if (doubt === undefined) return `could not ${operation} the job; it comes back when its lease expires`;
  return `the job may have been ${done}: an earlier attempt may have gone through (${doubt.message}) and the retries failed; if it was not ${done}, it comes back when its lease expires`;
}

/** The log fields of that doubt. */
function uncertainty(error: unknown): { uncertainAttemptError?: RelayError } {
  const doubt = error instanceof RelayError ? error.uncertainAttemptError : undefined;
  return doubt === undefined ? {} : { uncertainAttemptError: doubt };
}
