import type { Queryable, Statement } from '../db/index.js';

const PRUNE_THROUGHPUT: Statement = {
  name: 'relay_prune_throughput',
  // Params: $1 minutes kept before the current one, $2 batch size. Deletes one batch of the
  // buckets (migration 0007) older than that, oldest first; SKIP LOCKED leaves a bucket a
  // server is adding to for the next run. Returns how many (rowCount).
  text: `WITH doomed AS (
           SELECT queue, minute FROM relay_queue_throughput
           WHERE minute < date_trunc('minute', now(), 'UTC') - $1::int * interval '1 minute'
           ORDER BY minute LIMIT $2
           FOR UPDATE SKIP LOCKED
         )
         DELETE FROM relay_queue_throughput t USING doomed d WHERE t.queue = d.queue AND t.minute = d.minute`,
};

/** Deletes up to `batch` buckets older than keptMinutes before the current minute; returns how many. */
export async function pruneThroughputBatch(db: Queryable, keptMinutes: number, batch: number): Promise<number> {
  return (await db.query(PRUNE_THROUGHPUT, [keptMinutes, batch])).rowCount;
}
