import type { FailedJob, JobDetails, LeasedJob } from '../jobs.js';
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

export type LeasedRow = JobRow & { attempt: number; run_id: string; traceparent: string | null };

export type FailedRow = JobRow & { attempts: number; reason: string; failed_at: string };

/** A job's state column: NULL (no state) leaves the field out. */
function withState<T extends { state?: unknown }>(job: T, state: unknown): T {
  if (state !== null && state !== undefined) job.state = state;
  return job;
}

export function toLeasedJob(r: LeasedRow): LeasedJob {
  const job = withState<LeasedJob>(
    { id: r.id, queue: r.queue, timeout: r.timeout, max_retries: r.max_retries, payload: r.payload, run_at: formatTimestamp(r.run_at), attempt: r.attempt, run_id: r.run_id },
    r.state,
  );
  if (r.traceparent !== null && r.traceparent !== undefined) job.traceparent = r.traceparent;
  return job;
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

/** A job as sql/rules.ts LIVE_DETAILS and FAILED_DETAILS select it. */
export interface DetailsRow {
  id: string;
  queue: string;
  status: JobDetails['status'];
  timeout: number;
  max_retries: number;
  retries: number;
  attempts: number;
  payload: unknown;
  state: unknown;
  run_at: string;
  enqueued_at: string;
  run_id: string | null;
  lease_expires_at: string | null;
  reason: string | null;
  failed_at: string | null;
}

export function toJobDetails(r: DetailsRow): JobDetails {
  const job: JobDetails = {
    id: r.id, queue: r.queue, status: r.status, timeout: r.timeout, max_retries: r.max_retries, retries: r.retries, attempts: r.attempts,
    payload: r.payload, run_at: formatTimestamp(r.run_at), enqueued_at: formatTimestamp(r.enqueued_at),
  };
  if (r.run_id !== null) job.run_id = r.run_id;
  if (r.lease_expires_at !== null) job.lease_expires_at = formatTimestamp(r.lease_expires_at);
  if (r.reason !== null) job.reason = r.reason;
  if (r.failed_at !== null) job.failed_at = formatTimestamp(r.failed_at);
  return withState(job, r.state);
}

/** A JSON parameter: jsonb columns take JSON text. */
export function json(value: unknown): string {
  return JSON.stringify(value);
}

/** undefined and null both mean "no state"; anything else is stored as JSON. */
export function stateParam(state: unknown): string | null {
  return state === undefined || state === null ? null : json(state);
}
