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

const PRUNE_EMPTY_COUNTS: Statement = {
  name: 'relay_prune_empty_counts',
  // Params: $1 how many at the most. Deletes the counts of queues that hold nothing (a queue
  // name used once must not stay forever). SKIP LOCKED: a count a fold is updating is left for
  // the next run; a fold that comes after inserts the queue's row anew. Returns how many.
  text: `DELETE FROM relay_queue_counts WHERE queue IN (
           SELECT queue FROM relay_queue_counts WHERE pending = 0 AND in_flight = 0 AND failed = 0
           LIMIT $1 FOR UPDATE SKIP LOCKED)`,
};

/** Deletes up to `limit` counts of queues that hold nothing; returns how many. */
export async function pruneEmptyCounts(db: Queryable, limit: number): Promise<number> {
  return (await db.query(PRUNE_EMPTY_COUNTS, [limit])).rowCount;
}

/** Folds up to `limit` count deltas into the per-queue counts; returns how many. */
export async function foldCountDeltas(db: Queryable, limit: number): Promise<number> {
  const { rows } = await db.query<{ moved: number }>(FOLD_COUNT_DELTAS, [limit]);
  return rows[0]?.moved ?? 0;
}
