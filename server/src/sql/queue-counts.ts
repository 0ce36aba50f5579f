import type { Queryable, Statement } from '../db/index.js';

const FOLD_COUNT_DELTAS: Statement = {
  name: 'relay_fold_count_deltas',
  // Params: $1 how many deltas at the most. Moves deltas (migration 0003) into the per-queue
  // counts. SKIP LOCKED lets two servers fold at once without counting a delta twice; the
  // counts are updated in queue order, so that two folds never wait on each other in a cycle.
  // Returns how many deltas were folded.
  text: `WITH moved AS (
           DELETE FROM relay_queue_count_deltas
           WHERE ctid = ANY (ARRAY(SELECT ctid FROM relay_queue_count_deltas LIMIT $1 FOR UPDATE SKIP LOCKED))
           RETURNING queue, pending, in_flight, failed
         ), folded AS (
           INSERT INTO relay_queue_counts AS c (queue, pending, in_flight, failed)
           SELECT queue, sum(pending), sum(in_flight), sum(failed) FROM moved GROUP BY queue ORDER BY queue
           ON CONFLICT (queue) DO UPDATE
             SET pending = c.pending + EXCLUDED.pending, in_flight = c.in_flight + EXCLUDED.in_flight, failed = c.failed + EXCLUDED.failed
           RETURNING 1
         )
         SELECT count(*)::int AS moved FROM moved`,
};

/** Folds up to `limit` count deltas into the per-queue counts; returns how many. */
export async function foldCountDeltas(db: Queryable, limit: number): Promise<number> {
  const { rows } = await db.query<{ moved: number }>(FOLD_COUNT_DELTAS, [limit]);
  return rows[0]?.moved ?? 0;
}
