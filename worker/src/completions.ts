/**
 * Completing jobs: one `DELETE /v1/complete` per job, or, with a window, the completions of
 * jobs that finish within a few milliseconds of each other coalesced into one
 * `POST /v1/complete/batch`. Every completion names its delivery (`run_id`).
 */
import { JobNotFoundError, MAX_COMPLETE_BATCH, type JobRef, type RelayClient, type RetryEvent } from '@relay-ts/client';
import { timerMs } from './backoff.js';

/** `completed`: the server removed the job. `not_found`: this delivery no longer held it. */
export type CompletionOutcome = 'completed' | 'not_found';

interface Pending {
  ref: JobRef;
  resolve(outcome: CompletionOutcome): void;
  reject(error: unknown): void;
}

const key = (queue: string, id: string) => JSON.stringify([queue, id]);

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
  ) {}

  /** Completes one delivery of a job. Rejects with the client's error when the call fails. */
  async complete(queue: string, jobId: string, runId: string): Promise<CompletionOutcome> {
    if (this.windowMs <= 0) {
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
    else if (this.nothingElseComing(this.#pending.length)) this.#soon ??= setImmediate(() => this.flush());
    else this.#timer ??= setTimeout(() => this.flush(), timerMs(this.windowMs));
    return done;
  }

  /** Sends what is waiting now. */
  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#soon !== undefined) clearImmediate(this.#soon);
    this.#timer = undefined;
    this.#soon = undefined;
    const batch = this.#pending;
    this.#pending = [];
    if (batch.length > 0) void this.#send(batch);
  }

  async #completeOne(queue: string, jobId: string, runId: string): Promise<CompletionOutcome> {
    try {
      await this.client.complete(queue, jobId, { runId });
      return 'completed';
    } catch (error) {
      // A 404 after an attempt that may have gone through: most likely that attempt did it.
      if (error instanceof JobNotFoundError) return error.afterUncertainAttempt ? 'completed' : 'not_found';
      throw error;
    }
  }

  async #send(batch: Pending[]): Promise<void> {
    // An attempt of the batch that may have gone through (its answer lost) makes a job the
    // retry reports as not found most likely one that attempt completed: the same rule as a
    // 404 after an uncertain attempt of a single completion. A retry with the batch's
    // Idempotency-Key gets the first answer back instead, where the server keeps keys.
    let uncertain = false;
    const onRetry = (event: RetryEvent) => {
      if (event.uncertain) uncertain = true;
    };
    try {
      const result = await this.client.completeBatch(batch.map((p) => p.ref), { retry: { onRetry } });
      const completed = new Set(result.completed.map((r) => key(r.queue, r.job_id)));
      for (const p of batch) p.resolve(uncertain || completed.has(key(p.ref.queue, p.ref.job_id)) ? 'completed' : 'not_found');
    } catch (error) {
      for (const p of batch) p.reject(error);
    }
  }
}
