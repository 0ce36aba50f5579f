import type { Queryable, Statement } from '../db/index.js';
import { MOVE_TO_FAILED, RETRIES_USED_UP } from './rules.js';

export const REAP: Statement = {
  name: 'relay_reap',
  // Params: $1 how many at the most. Expired leases across all queues: SKIP LOCKED plus the
  // re-check of run_id under the row lock means two reapers never count one expiry twice.
  // Returns the counts retried and failed, and the queues that got a job back.
  text: `WITH expired AS (
           SELECT queue, id FROM relay_jobs
           WHERE run_id IS NOT NULL AND lease_expires_at < now()
           LIMIT $1
           FOR UPDATE SKIP LOCKED
         ), dead AS (
           DELETE FROM relay_jobs j USING expired e
           WHERE j.queue = e.queue AND j.id = e.id AND ${RETRIES_USED_UP}
           RETURNING j.*
         ), moved AS (
           ${MOVE_TO_FAILED}
           SELECT queue, id, timeout, max_retries, attempt, payload, state, run_at, enqueued_at, 'lease expired' FROM dead
         ), retried AS (
           UPDATE relay_jobs j
           SET retries = j.retries + 1, run_id = NULL, lease_expires_at = NULL
           FROM expired e
           WHERE j.queue = e.queue AND j.id = e.id AND NOT (${RETRIES_USED_UP})
           RETURNING j.queue
         )
         SELECT (SELECT count(*) FROM retried)::int AS retried, (SELECT count(*) FROM dead)::int AS failed,
                (SELECT COALESCE(array_agg(DISTINCT queue), '{}') FROM retried) AS queues`,
};

/** Returns up to `limit` expired leases to their queues or to the failed jobs. */
export async function reapExpiredLeases(db: Queryable, limit: number): Promise<{ retried: number; failed: number; queues: string[] }> {
  const { rows } = await db.query<{ retried: number; failed: number; queues: string[] }>(REAP, [limit]);
  return rows[0] ?? { retried: 0, failed: 0, queues: [] };
}
