import type { LeasedJob, NewJob } from './jobs.js';

/**
 * An enqueue's chance to store some of its jobs already leased to requests that wait for
 * them (the long poll implements it). The enqueue runs its statement with `positions` and
 * then calls exactly one of settle (with the jobs the statement stored leased) or cancel
 * (the statement failed).
 */
export interface HandOffPlan {
  /** 1-based positions, in the enqueued array, of the jobs to store leased. */
  positions: number[];
  /**
   * Resolves once the requests that got jobs have written their answers (when none did, at
   * once): the enqueue answers its producer after them, so that the job that waited longest
   * reaches its worker first.
   */
  settle(delivered: LeasedJob[]): Promise<void>;
  cancel(): void;
}

export interface HandOff {
  /** undefined when no request waits for these jobs. */
  plan(jobs: NewJob[]): HandOffPlan | undefined;
}
