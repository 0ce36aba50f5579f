import type { FailedJob, LeasedJob } from '../jobs.js';
import { formatTimestamp } from '../time.js';

/** Rows as the statements return them (timestamps as text, see db/), and their API shapes. */

export interface JobRow {
  id: string;
  queue: string;
  timeout: number;
  max_retries: number;
  payload: unknown;
  state: unknown;
  run_at: string;
}

export type LeasedRow = JobRow & { attempt: number; run_id: string };

export type FailedRow = JobRow & { attempts: number; reason: string; failed_at: string };

/** A job's state column: NULL (no state) leaves the field out. */
function withState<T extends { state?: unknown }>(job: T, state: unknown): T {
  if (state !== null && state !== undefined) job.state = state;
  return job;
}

export function toLeasedJob(r: LeasedRow): LeasedJob {
  return withState<LeasedJob>(
    { id: r.id, queue: r.queue, timeout: r.timeout, max_retries: r.max_retries, payload: r.payload, run_at: formatTimestamp(r.run_at), attempt: r.attempt, run_id: r.run_id },
    r.state,
  );
}

export function toFailedJob(r: FailedRow): FailedJob {
  return withState<FailedJob>(
    {
      id: r.id, queue: r.queue, timeout: r.timeout, max_retries: r.max_retries, payload: r.payload, run_at: formatTimestamp(r.run_at),
      attempts: r.attempts, reason: r.reason, failed_at: formatTimestamp(r.failed_at),
    },
    r.state,
  );
}

/** A JSON parameter: jsonb columns take JSON text. */
export function json(value: unknown): string {
  return JSON.stringify(value);
}

/** undefined and null both mean "no state"; anything else is stored as JSON. */
export function stateParam(state: unknown): string | null {
  return state === undefined || state === null ? null : json(state);
}
