import type { Queryable, Statement } from '../db/index.js';
import { MOVE_TO_FAILED, RETRIES_USED_UP } from './rules.js';

/** The default backoff's ceiling, seconds; its exponent is capped below where power() would overflow. */
const BACKOFF = 'LEAST(power(2, LEAST(GREATEST(j.attempt - 1, 0), 12)), 3600)';

const FAIL: Statement = {
  name: 'relay_fail',
  // Params: $1 queue, $2 id, $3 run_id or NULL, $4 reason, $5 retry_in seconds or NULL for
  // the default backoff min(2^(attempt-1), 3600). Returns one row: the outcome, and run_at
  // when retrying; no row when the job is not in flight.
  text: `WITH target AS (
           SELECT queue, id FROM relay_jobs
           WHERE queue = $1 AND id = $2 AND run_id IS NOT NULL AND ($3::text IS NULL OR run_id::text = $3)
           FOR UPDATE
         ), dead AS (
           DELETE FROM relay_jobs j USING target t
           WHERE j.queue = t.queue AND j.id = t.id AND ${RETRIES_USED_UP}
           RETURNING j.*
         ), moved AS (
           ${MOVE_TO_FAILED}
           SELECT queue, id, timeout, max_retries, attempt, payload, state, run_at, enqueued_at, $4, traceparent FROM dead
         ), retried AS (
           UPDATE relay_jobs j
           SET retries = j.retries + 1, run_id = NULL, lease_expires_at = NULL,
               run_at = now() + COALESCE($5::float8, ${BACKOFF}) * interval '1 second'
           FROM target t
           WHERE j.queue = t.queue AND j.id = t.id AND NOT (${RETRIES_USED_UP})
           RETURNING j.run_at
         )
         SELECT 'failed' AS outcome, NULL::timestamptz AS run_at FROM dead
         UNION ALL
         SELECT 'retrying', run_at FROM retried`,
};

export type FailRow = { outcome: 'failed'; run_at: null } | { outcome: 'retrying'; run_at: string };

/** Fails an in-flight job; undefined when it is not in flight. */
export async function failJob(
  db: Queryable,
  f: { queue: string; id: string; runId: string | null; reason: string; retryInSeconds: number | null },
): Promise<FailRow | undefined> {
  const { rows } = await db.query<FailRow>(FAIL, [f.queue, f.id, f.runId, f.reason, f.retryInSeconds]);
  return rows[0];
}
