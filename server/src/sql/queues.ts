import type { Queryable, Statement } from '../db/index.js';
import type { QueueSummary } from '../jobs.js';
import { formatTimestamp } from '../time.js';

const QUEUE_SUMMARIES: Statement = {
  name: 'relay_queue_summaries',
  // Params: $1 one queue's name, or NULL for every queue that holds a job or is paused.
  // Counts are the folded counts plus the deltas not folded yet (migration 0003), read under
  // one snapshot; "pending" splits into waiting and scheduled by the clock, counting the
  // scheduled part of the waiting index. The oldest waiting job is the first of that index.
  text: `WITH totals AS (
           SELECT queue, sum(pending) AS pending, sum(in_flight) AS in_flight, sum(failed) AS failed
           FROM (SELECT queue, pending, in_flight, failed FROM relay_queue_counts WHERE $1::text IS NULL OR queue = $1
                 UNION ALL
                 SELECT queue, pending, in_flight, failed FROM relay_queue_count_deltas WHERE $1::text IS NULL OR queue = $1) c
           GROUP BY queue
         ), named AS (
           SELECT queue FROM totals WHERE pending <> 0 OR in_flight <> 0 OR failed <> 0
           UNION
           SELECT queue FROM relay_queues WHERE paused_at IS NOT NULL AND ($1::text IS NULL OR queue = $1)
           UNION
           SELECT $1::text WHERE $1::text IS NOT NULL
         )
         SELECT n.queue,
                COALESCE(t.pending, 0)::float8 AS pending, s.scheduled::float8 AS scheduled,
                COALESCE(t.in_flight, 0)::float8 AS in_flight, COALESCE(t.failed, 0)::float8 AS failed,
                EXTRACT(EPOCH FROM now() - o.run_at)::float8 AS oldest_waiting_seconds, q.paused_at
         FROM named n
         LEFT JOIN totals t ON t.queue = n.queue
         LEFT JOIN relay_queues q ON q.queue = n.queue
         CROSS JOIN LATERAL (
           SELECT count(*) AS scheduled FROM relay_jobs j WHERE j.queue = n.queue AND j.run_id IS NULL AND j.run_at > now()) s
         LEFT JOIN LATERAL (
           SELECT j.run_at FROM relay_jobs j WHERE j.queue = n.queue AND j.run_id IS NULL AND j.run_at <= now()
           ORDER BY j.run_at, j.seq LIMIT 1) o ON true
         ORDER BY n.queue`,
};

const PAUSE: Statement = {
  name: 'relay_pause_queue',
  // Params: $1 queue. Pausing a paused queue keeps the time it was first paused.
  text: `INSERT INTO relay_queues AS q (queue, paused_at) VALUES ($1, now())
         ON CONFLICT (queue) DO UPDATE SET paused_at = COALESCE(q.paused_at, now())`,
};

const RESUME: Statement = {
  name: 'relay_resume_queue',
  // Params: $1 queue. Returns a row when the queue was paused.
  text: `UPDATE relay_queues SET paused_at = NULL WHERE queue = $1 AND paused_at IS NOT NULL RETURNING queue`,
};

interface SummaryRow {
  queue: string;
  pending: number;
  scheduled: number;
  in_flight: number;
  failed: number;
  oldest_waiting_seconds: number | null;
  paused_at: string | null;
}

function toSummary(r: SummaryRow): QueueSummary {
  const summary: QueueSummary = {
    queue: r.queue,
    // A job scheduled when counted and due a moment later is in neither count's snapshot twice.
    waiting: Math.max(0, r.pending - r.scheduled),
    scheduled: r.scheduled,
    in_flight: r.in_flight,
    failed: r.failed,
    oldest_waiting_seconds: r.oldest_waiting_seconds === null ? null : Math.max(0, r.oldest_waiting_seconds),
    paused: r.paused_at !== null,
  };
  if (r.paused_at !== null) summary.paused_at = formatTimestamp(r.paused_at);
  return summary;
}

/** Every queue that holds a job or is paused, by name. */
export async function queueSummaries(db: Queryable): Promise<QueueSummary[]> {
  const { rows } = await db.query<SummaryRow>(QUEUE_SUMMARIES, [null]);
  return rows.map(toSummary);
}

/** One queue (any name: an unknown queue holds nothing). */
export async function queueSummary(db: Queryable, queue: string): Promise<QueueSummary> {
  const { rows } = await db.query<SummaryRow>(QUEUE_SUMMARIES, [queue]);
  return toSummary(rows[0]!);
}

export async function pauseQueue(db: Queryable, queue: string): Promise<void> {
  await db.query(PAUSE, [queue]);
}

/** Whether the queue was paused. */
export async function resumeQueue(db: Queryable, queue: string): Promise<boolean> {
  return (await db.query(RESUME, [queue])).rowCount > 0;
}

export const queueStatements = { QUEUE_SUMMARIES };
