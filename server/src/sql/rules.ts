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
           (queue, id, timeout, max_retries, attempts, payload, state, run_at, enqueued_at, reason, traceparent)`;

/** The columns of a job as the API hands it out, from relay_jobs `j`. */
export const DELIVERED_COLUMNS = 'j.id, j.queue, j.timeout, j.max_retries, j.payload, j.state, j.run_at, j.attempt, j.run_id::text AS run_id, j.traceparent';

/** A queue `queueExpr` is not paused: its jobs may be leased. */
export const notPaused = (queueExpr: string) => `NOT EXISTS (SELECT 1 FROM relay_queues pq WHERE pq.queue = ${queueExpr} AND pq.paused_at IS NOT NULL)`;

/** A job's status as the operations API names it, from relay_jobs `j`. */
export const JOB_STATUS = "CASE WHEN j.run_id IS NOT NULL THEN 'in_flight' WHEN j.run_at > now() THEN 'scheduled' ELSE 'waiting' END";

/** The columns of a live job as an operator sees it, from relay_jobs `j` (rows.ts: DetailsRow). */
export const LIVE_DETAILS = `j.id, j.queue, ${JOB_STATUS} AS status, j.timeout, j.max_retries, j.retries, j.attempt AS attempts,
  j.payload, j.state, j.run_at, j.enqueued_at, j.run_id::text AS run_id, j.lease_expires_at, NULL::text AS reason, NULL::timestamptz AS failed_at`;

/**
 * The columns of a failed job as an operator sees it, from relay_failed_jobs \`f\`. A job fails
 * when its retries are used up, one retry at a time: it used max_retries of them.
 */
export const FAILED_DETAILS = `f.id, f.queue, 'failed' AS status, f.timeout, f.max_retries, GREATEST(f.max_retries, 0) AS retries, f.attempts,
  f.payload, f.state, f.run_at, f.enqueued_at, NULL::text AS run_id, NULL::timestamptz AS lease_expires_at, f.reason, f.failed_at`;
