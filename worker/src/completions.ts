/**
 * Completing jobs: one `DELETE /v1/complete` per job, or, with a window, the completions of
 * jobs that finish within a few milliseconds of each other coalesced into one
 * `POST /v1/complete/batch`. With settleOnPoll, the worker's next poll may take the
 * completions waiting at that moment (take()) and carry them (`POST /v1/next`); those it does
 * not take go together in one `POST /v1/complete/batch` (a server with `POST /v1/next` has
 * it), with no window as soon as no poll took them. Every completion names its delivery
 * (`run_id`).
 */
import { JobNotFoundError, MAX_COMPLETE_BATCH, RelayError, type Delivery, type JobRef, type RelayClient, type RetryEvent, type Settled } from '@relay-ts/client';
import { timerMs } from './backoff.js';

/** `completed`: the server removed the job. `not_found`: this delivery no longer held it. */
export type CompletionOutcome = 'completed' | 'not_found';

interface Pending {
  ref: Delivery;
  resolve(outcome: CompletionOutcome): void;
  reject(error: unknown): void;
}

const key = (queue: string, id: string) => JSON.stringify([queue, id]);

/**
 * Whether a failed call may have been carried out by the server: an earlier attempt's answer
 * was lost (`uncertainEarlier`), or the last one's (no status, a gateway's 502 or 504, or an
 * error that is not the client's, such as an abort).
 */
export function mayHaveGoneThrough(error: unknown, uncertainEarlier: boolean): boolean {
  if (uncertainEarlier) return true;
  if (!(error instanceof RelayError)) return true;
  return error.status === undefined || error.status === 502 || error.status === 504;
}

/** Completions a poll carries (Completer.take): it reports what became of them. */
export interface CarriedCompletions {
  readonly deliveries: readonly Delivery[];
  /**
   * The poll was answered with these outcomes. uncertain: an attempt of it may have gone
   * through unanswered, so a delivery not found was most likely completed by that attempt.
   */
  settled(settled: Settled, uncertain: boolean): void;
  /** The poll failed: the completions go on their own (uncertain as for settled). */
  unsent(uncertain: boolean): void;
}

export class Completer {
  #pending: Pending[] = [];
  #timer: NodeJS.Timeout | undefined;
  /** The send of a batch that nothing else can join, on the next turn (see complete). */
  #soon: NodeJS.Immediate | undefined;

  /**
   * @param windowMs how long the first completion waits for others to join it; 0 sends each alone.
   * @param nothingElseComing true when no other completion can join soon (every job the worker
   *   holds is waiting for its completion), so waiting longer would only add latency.
   */
  constructor(
    private readonly client: RelayClient<any, any>,
    private readonly windowMs: number,
    private readonly nothingElseComing: (pending: number) => boolean = () => false,
    /** Whether polls may take the completions (take()); they then wait for one turn longer before going alone. */
    private settleOnPoll = false,
  ) {}

  /**
   * The server has no `POST /v1/next`: no poll takes completions any more, and without a
   * window each goes alone again (such a server may have no batch route either).
   */
  stopSettlingOnPoll(): void {
    this.settleOnPoll = false;
  }

  /** Completes one delivery of a job. Rejects with the client's error when the call fails. */
  async complete(queue: string, jobId: string, runId: string): Promise<CompletionOutcome> {
    if (this.windowMs <= 0 && !this.settleOnPoll) {
      // Sent on the next turn of the event loop: the poll for the slots these jobs freed,
      // due on that turn too, goes first, so the server claims the next jobs while it
      // completes these rather than after.
      await new Promise<void>((resolve) => setImmediate(resolve));
      return this.#completeOne(queue, jobId, runId);
    }
    const done = new Promise<CompletionOutcome>((resolve, reject) => {
      this.#pending.push({ ref: { queue, job_id: jobId, run_id: runId }, resolve, reject });
    });
    if (this.#pending.length >= MAX_COMPLETE_BATCH) this.flush();
    else if (this.windowMs <= 0 || this.nothingElseComing(this.#pending.length)) this.#soon ??= this.#nextTurn();
    else this.#timer ??= setTimeout(() => this.flush(), timerMs(this.windowMs));
    return done;
  }

  /**
   * Flushes on the next turn of the event loop; with settleOnPoll, on the turn after: the poll
   * for the slots these jobs freed is sent on the next turn, and takes them if it goes.
   */
  #nextTurn(): NodeJS.Immediate {
    if (!this.settleOnPoll) return setImmediate(() => this.flush());
    return setImmediate(() => {
      this.#soon = setImmediate(() => this.flush());
    });
  }

  /** For a poll about to be sent: the completions waiting now, which it carries instead; undefined when none waits. */
  take(): CarriedCompletions | undefined {
    if (this.#pending.length === 0) return undefined;
    this.#cancelTimers();
    const batch = this.#pending;
    this.#pending = [];
    return {
      deliveries: batch.map((p) => p.ref),
      settled: (settled, uncertain) => this.#resolve(batch, settled.completed, uncertain),
      unsent: (uncertain) => this.#sendNow(batch, uncertain),
    };
  }

  /** Sends what is waiting now. */
  flush(): void {
    this.#cancelTimers();
    const batch = this.#pending;
    this.#pending = [];
    if (batch.length > 0) this.#sendNow(batch);
  }

  /**
   * Sends a batch in one request, or each completion alone with no window (as without
   * settleOnPoll). With settleOnPoll, several at once go together even with no window, as a
   * poll would have carried them: a request of one job each would cost far more (and as many
   * sockets at once), and the window's meaning, no wait, is kept. uncertain as for #send.
   */
  #sendNow(batch: Pending[], uncertain = false): void {
    if (this.windowMs > 0 || (this.settleOnPoll && batch.length > 1)) return void this.#send(batch, uncertain);
    for (const p of batch) this.#completeOne(p.ref.queue, p.ref.job_id, p.ref.run_id, uncertain).then(p.resolve, p.reject);
  }

  #cancelTimers(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#soon !== undefined) clearImmediate(this.#soon);
    this.#timer = undefined;
    this.#soon = undefined;
  }

  async #completeOne(queue: string, jobId: string, runId: string, uncertainEarlier = false): Promise<CompletionOutcome> {
    try {
      await this.client.complete(queue, jobId, { runId });
      return 'completed';
    } catch (error) {
      // A 404 after an attempt that may have gone through (this call's, or a poll's that carried
      // it): most likely that attempt did it.
      if (error instanceof JobNotFoundError) return error.afterUncertainAttempt || uncertainEarlier ? 'completed' : 'not_found';
      throw error;
    }
  }

  /**
   * Sends a batch. uncertain: an earlier request that carried it (a poll) may have gone through
   * unanswered, so a job this one finds gone was most likely completed by it.
   */
  async #send(batch: Pending[], uncertain = false): Promise<void> {
    // An attempt of the batch that may have gone through (its answer lost) makes a job the
    // retry reports as not found most likely one that attempt completed: the same rule as a
    // 404 after an uncertain attempt of a single completion. A retry with the batch's
    // Idempotency-Key gets the first answer back instead, where the server keeps keys.
    const onRetry = (event: RetryEvent) => {
      if (event.uncertain) uncertain = true;
    };
    try {
      const result = await this.client.completeBatch(batch.map((p) => p.ref as JobRef), { retry: { onRetry } });
      this.#resolve(batch, result.completed, uncertain);
    } catch (error) {
      for (const p of batch) p.reject(error);
    }
  }

  #resolve(batch: Pending[], completedRefs: readonly JobRef[], uncertain: boolean): void {
    const completed = new Set(completedRefs.map((r) => key(r.queue, r.job_id)));
    for (const p of batch) p.resolve(uncertain || completed.has(key(p.ref.queue, p.ref.job_id)) ? 'completed' : 'not_found');
  }
}
