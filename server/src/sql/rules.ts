/**
 * The rules several statements share, each with one home. A job is in flight exactly while
 * run_id IS NOT NULL; run_id (a sequence value, sent as a string) is new at every delivery
 * and fences calls from a stale lease. Fragments take the job table's alias as `j`.
 */

/** When a lease given or renewed now ends. */
export const LEASE_END = "now() + j.timeout * interval '1 second'";

/** A new delivery's fencing token. */
export const NEW_RUN_ID = "nextval('relay_run_seq')";

/** A job that may not be retried again: its retries are used up (never for a negative max_retries). */
export const RETRIES_USED_UP = 'j.max_retries >= 0 AND j.retries >= j.max_retries';

/** The head of the statement that keeps a job that failed for good; SELECT its columns after it. */
export const MOVE_TO_FAILED = `INSERT INTO relay_failed_jobs
           (queue, id, timeout, max_retries, attempts, payload, state, run_at, enqueued_at, reason)`;

/** The columns of a job as the API hands it out, from relay_jobs `j`. */
export const DELIVERED_COLUMNS = 'j.id, j.queue, j.timeout, j.max_retries, j.payload, j.state, j.run_at, j.attempt, j.run_id::text AS run_id';
