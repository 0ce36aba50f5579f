import type { Queryable, Statement } from '../db/index.js';
import { formatTimestamp } from '../time.js';

const READ_THROUGHPUT: Statement = {
  name: 'relay_read_throughput',
  // Params: $1 one queue's name, or NULL for every queue; $2 how many minutes, the current one
  // included. Returns the database's current minute (UTC) in every row, and the buckets
  // (migration 0007) of those minutes, by queue and minute; a single row with a NULL queue when
  // there is none. Minutes without a bucket had nothing counted.
  text: `WITH now_minute AS (SELECT date_trunc('minute', now(), 'UTC') AS current_minute)
         SELECT n.current_minute, t.queue, t.minute,
                t.enqueued::float8 AS enqueued, t.completed::float8 AS completed, t.failed::float8 AS failed
         FROM now_minute n
         LEFT JOIN relay_queue_throughput t
           ON t.minute > n.current_minute - $2::int * interval '1 minute' AND t.minute <= n.current_minute
          AND ($1::text IS NULL OR t.queue = $1)
         ORDER BY t.queue, t.minute`,
};

export interface ThroughputBucket {
  queue: string;
  /** The start of the minute, RFC 3339 (UTC). */
  minute: string;
  enqueued: number;
  completed: number;
  failed: number;
}

interface Row {
  current_minute: string;
  queue: string | null;
  minute: string | null;
  enqueued: number | null;
  completed: number | null;
  failed: number | null;
}

/** The buckets of the last `minutes` minutes (of one queue, or of all), with the database's current minute. */
export async function readThroughput(db: Queryable, queue: string | null, minutes: number): Promise<{ currentMinute: string; buckets: ThroughputBucket[] }> {
  const { rows } = await db.query<Row>(READ_THROUGHPUT, [queue, minutes]);
  const buckets = rows
    .filter((r) => r.queue !== null)
    .map((r) => ({ queue: r.queue!, minute: formatTimestamp(r.minute!), enqueued: r.enqueued!, completed: r.completed!, failed: r.failed! }));
  return { currentMinute: formatTimestamp(rows[0]!.current_minute), buckets };
}
