import type { LeasedJob } from './jobs.js';

/** Why a job was retried or failed: its lease expired, or its worker called `fail`. */
export type RetryCause = 'lease_expired' | 'fail';

/**
 * Told of each job outcome once it is known for certain (its statement committed), so that
 * what counts them (metrics.ts) stays out of the store. Calls are synchronous and must not
 * throw: they run on the request's path.
 */
export interface JobEvents {
  /** count jobs of queue were stored by an enqueue. */
  enqueued(queue: string, count: number): void;
  /** Jobs were handed to a client by `next`. */
  delivered(jobs: readonly LeasedJob[]): void;
  /** A job was completed; processedSeconds since its delivery began, null when it was not in flight. */
  completed(queue: string, processedSeconds: number | null): void;
  /** count jobs went back to their queue with a retry counted. */
  retried(queue: string, cause: RetryCause, count: number): void;
  /** count jobs moved to the failed jobs, their retries used up. */
  failed(queue: string, cause: RetryCause, count: number): void;
  rescheduled(queue: string): void;
  cancelled(queue: string): void;
}

const ignore = () => undefined;

/** For a server without metrics. */
export const noJobEvents: JobEvents = {
  enqueued: ignore,
  delivered: ignore,
  completed: ignore,
  retried: ignore,
  failed: ignore,
  rescheduled: ignore,
  cancelled: ignore,
};
