import type { LeasedJob } from './jobs.js';

/**
 * Splits claimed jobs into those that fit one answer of about maxBytes and those left over (to
 * be released): with large payloads, a full claim could not be built into one reply at all.
 * The first job always fits, whatever its size: a job the body limit let in must be deliverable.
 */
export function fitAnswer(jobs: LeasedJob[], maxBytes: number): { fits: LeasedJob[]; left: LeasedJob[] } {
  if (jobs.length <= 1) return { fits: jobs, left: [] };
  let size = 2;
  let i = 0;
  for (; i < jobs.length; i++) {
    const job = jobs[i]!;
    // String length, not bytes: the bound is approximate by design, and this is the hot path.
    size += JSON.stringify(job.payload).length + (job.state === undefined ? 0 : JSON.stringify(job.state).length) + 200 + job.id.length + job.queue.length;
    if (i > 0 && size > maxBytes) break;
  }
  return { fits: jobs.slice(0, i), left: jobs.slice(i) };
}
