import type { Queryable, Statement } from '../db/index.js';
import { MOVE_TO_FAILED, RETRIES_USED_UP } from './rules.js';

export const REAP: Statement = {
  name: 'relay_reap',
  // Params: $1 how many at the most. Expired leases across all queues: SKIP LOCKED plus the
  // re-check of run_id under the row lock means two reapers never count one expiry twice.
  // Returns, per queue, how many jobs were retried and how many failed.
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
           SELECT queue, id, timeout, max_retries, attempt, payload, state, run_at, enqueued_at, 'lease expired', traceparent FROM dead
         ), retried AS (
           UPDATE relay_jobs j
           SET retries = j.retries + 1, run_id = NULL, lease_expires_at = NULL
           FROM expired e
           WHERE j.queue = e.queue AND j.id = e.id AND NOT (${RETRIES_USED_UP})
           RETURNING j.queue
         )
         SELECT queue, sum(retried)::int AS retried, sum(failed)::int AS failed
         FROM (SELECT queue, 1 AS retried, 0 AS failed FROM retried
               UNION ALL
               SELECT queue, 0, 1 FROM dead) r
         GROUP BY queue`,
};

export interface Reaped {
  retried: number;
  failed: number;
  /** The queues that got a job back. */
  queues: string[];
  perQueue: Array<{ queue: string; retried: number; failed: number }>;
}

/** Returns up to `limit` expired leases to their queues or to the failed jobs. */
export async function reapExpiredLeases(db: Queryable, limit: number): Promise<Reaped> {
  const { rows } = await db.query<{ queue: string; retried: number; failed: number }>(REAP, [limit]);
  return {
    retried: rows.reduce((n, r) => n + r.retried, 0),
    failed: rows.reduce((n, r) => n + r.failed, 0),
    queues: rows.filter((r) => r.retried > 0).map((r) => r.queue),
    perQueue: rows,
  };
}
