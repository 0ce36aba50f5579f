import type { JobDetails, QueueSummary } from '@relay-ts/client';
import type { ActionSpec, Dashboard } from './context.js';

/**
 * The operations an admin can start from several pages, each with its question and the way
 * its outcome is said. `then` is what the page does after (a refresh).
 */

const quote = (s: string) => `“${s}”`;

export function pauseQueue(d: Dashboard, queue: string, then?: () => void): ActionSpec<QueueSummary> {
  return {
    what: `Pause ${quote(queue)}`,
    ask: { title: `Pause ${quote(queue)}?`, body: 'Workers get no jobs of this queue until it is resumed; enqueues are still accepted and jobs in flight keep their leases.', confirm: 'Pause' },
    run: () => d.client.pauseQueue(queue),
    done: (q) => `Paused ${quote(q.queue)}: ${q.waiting} waiting, ${q.in_flight} in flight.`,
    then,
  };
}

export function resumeQueue(d: Dashboard, queue: string, then?: () => void): ActionSpec<QueueSummary> {
  return {
    what: `Resume ${quote(queue)}`,
    run: () => d.client.resumeQueue(queue),
    done: (q) => `Resumed ${quote(q.queue)}.`,
    then,
  };
}

export function cancelJob(d: Dashboard, job: Pick<JobDetails, 'queue' | 'id' | 'status'>, then?: () => void): ActionSpec<void> {
  const inFlight = job.status === 'in_flight' ? ' Its worker learns it at its next heartbeat.' : '';
  return {
    what: `Cancel ${quote(job.id)}`,
    ask: { title: `Cancel job ${quote(job.id)}?`, body: `The job is removed from ${quote(job.queue)} and will not run.${inFlight}`, confirm: 'Cancel job' },
    run: () => d.client.cancelJob(job.queue, job.id),
    done: () => `Cancelled ${quote(job.id)} in ${quote(job.queue)}.`,
    then,
  };
}

export function retryJob(d: Dashboard, job: Pick<JobDetails, 'queue' | 'id'>, then?: () => void): ActionSpec<JobDetails> {
  return {
    what: `Retry ${quote(job.id)}`,
    run: () => d.client.retryJob(job.queue, job.id),
    done: (j) => `${quote(j.id)} is ${j.status} again in ${quote(j.queue)}.`,
    then,
  };
}

/** Cancelling an id that has no live job purges its kept failures (DELETE /v1/queues/{queue}/jobs/{id}). */
export function purgeJob(d: Dashboard, job: Pick<JobDetails, 'queue' | 'id'>, then?: () => void): ActionSpec<void> {
  return {
    what: `Purge ${quote(job.id)}`,
    ask: { title: `Purge failed job ${quote(job.id)}?`, body: `Its kept failures are deleted from ${quote(job.queue)} and cannot be retried any more.`, confirm: 'Purge' },
    run: () => d.client.cancelJob(job.queue, job.id),
    done: () => `Purged ${quote(job.id)} from the failed jobs of ${quote(job.queue)}.`,
    then,
  };
}

export function retryAllFailed(d: Dashboard, queue: string, count: number, then?: () => void): ActionSpec<{ retried: number; skipped: number }> {
  return {
    what: `Retry the failed jobs of ${quote(queue)}`,
    ask: { title: `Retry all ${count} failed jobs of ${quote(queue)}?`, body: 'Each goes back to the queue, waiting, with a fresh retry budget. A failure whose id is live again is skipped.', confirm: 'Retry all' },
    run: () => d.client.retryFailedJobs(queue),
    done: (r) => `Retried ${r.retried} failed job${r.retried === 1 ? '' : 's'} of ${quote(queue)}${r.skipped ? `; ${r.skipped} skipped (live again)` : ''}.`,
    then,
  };
}

export function purgeAllFailed(d: Dashboard, queue: string, count: number, then?: () => void): ActionSpec<{ purged: number }> {
  return {
    what: `Purge the failed jobs of ${quote(queue)}`,
    ask: { title: `Purge all ${count} failed jobs of ${quote(queue)}?`, body: 'They are deleted for good and cannot be retried.', confirm: 'Purge all' },
    run: () => d.client.purgeFailedJobs(queue),
    done: (r) => `Purged ${r.purged} failed job${r.purged === 1 ? '' : 's'} of ${quote(queue)}.`,
    then,
  };
}
