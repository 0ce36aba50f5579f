import type { Queryable, Statement } from '../db/index.js';

const ADD_THROUGHPUT: Statement = {
  name: 'relay_add_throughput',
  // Params: $1 queues, $2 minutes (the start of each, UTC), $3 jobs enqueued, $4 completed,
  // $5 failed: arrays of one length, with each (queue, minute) at most once. Adds the counts to
  // the buckets (migration 0007), creating those that are missing. Rows are taken in key order,
  // so that two servers adding to the same buckets never wait on each other in a cycle.
  // Returns nothing.
  text: `INSERT INTO relay_queue_throughput AS t (queue, minute, enqueued, completed, failed)
         SELECT queue, minute, enqueued, completed, failed
         FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::bigint[], $5::bigint[]) AS c(queue, minute, enqueued, completed, failed)
         ORDER BY queue COLLATE "C", minute
         ON CONFLICT (queue, minute) DO UPDATE
           SET enqueued = t.enqueued + EXCLUDED.enqueued, completed = t.completed + EXCLUDED.completed, failed = t.failed + EXCLUDED.failed`,
};

export interface ThroughputCounts {
  queue: string;
  /** The start of the minute, RFC 3339 (UTC). */
  minute: string;
  enqueued: number;
  completed: number;
  failed: number;
}

/** Adds the counts to their buckets, in one statement. */
export async function addThroughput(db: Queryable, counts: readonly ThroughputCounts[]): Promise<void> {
  if (counts.length === 0) return;
  await db.query(ADD_THROUGHPUT, [
    counts.map((c) => c.queue),
    counts.map((c) => c.minute),
    counts.map((c) => c.enqueued),
    counts.map((c) => c.completed),
    counts.map((c) => c.failed),
  ]);
}
