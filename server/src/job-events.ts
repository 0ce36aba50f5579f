import type { LeasedJob } from './jobs.js';

/** Why a job was retried or failed: its lease expired, or its worker called `fail`. */
export type RetryCause = 'lease_expired' | 'fail';

/**
 * Told of each job outcome once it is known for certain (its statement committed), so that
 * what counts them (metrics.ts, throughput.ts) stays out of the store. Calls are synchronous and must not
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

/** For a store that tells nobody. */
export const noJobEvents: JobEvents = {
  enqueued: ignore,
  delivered: ignore,
  completed: ignore,
  retried: ignore,
  failed: ignore,
  rescheduled: ignore,
  cancelled: ignore,
};

/** Tells each of listeners of every outcome, in order (the metrics and the throughput recorder). */
export function jobEventsOf(listeners: readonly JobEvents[]): JobEvents {
  if (listeners.length === 1) return listeners[0]!;
  return {
    enqueued: (queue, count) => listeners.forEach((l) => l.enqueued(queue, count)),
    delivered: (jobs) => listeners.forEach((l) => l.delivered(jobs)),
    completed: (queue, processedSeconds) => listeners.forEach((l) => l.completed(queue, processedSeconds)),
    retried: (queue, cause, count) => listeners.forEach((l) => l.retried(queue, cause, count)),
    failed: (queue, cause, count) => listeners.forEach((l) => l.failed(queue, cause, count)),
    rescheduled: (queue) => listeners.forEach((l) => l.rescheduled(queue)),
    cancelled: (queue) => listeners.forEach((l) => l.cancelled(queue)),
  };
}
