import type { Queryable, Statement } from '../db/index.js';
import { LEASE_END, NEW_RUN_ID, notPaused } from './rules.js';
import { KEYED_ANSWER_COLUMNS, KEYS_TAKEN_CHECK, PICKED_ANSWER, rememberAnswersCte, type KeyedItemAnswers } from './idempotency.js';
import { json, toLeasedJob, type LeasedRow } from './rows.js';
import type { LeasedJob } from '../jobs.js';

// The jobs of $1 (a JSON array), in array order so that seq (the FIFO tie-break) follows it.
const COLUMNS = 'queue text, id text, timeout integer, max_retries integer, payload jsonb, state jsonb, run_at timestamptz, traceparent text';
const VALUES = `j.queue, j.id, j.timeout, COALESCE(j.max_retries, 0), COALESCE(j.payload, 'null'::jsonb),
                  NULLIF(j.state, 'null'::jsonb), COALESCE(j.run_at, now()), j.traceparent`;

const ENQUEUE_BATCH: Statement = {
  name: 'relay_enqueue_batch',
  // Params: $1 the jobs as a JSON array. A (queue, id) that exists or repeats is skipped, the
  // first occurrence wins. Returns the number of jobs stored per queue (no row: none stored).
  text: `WITH stored AS (
           INSERT INTO relay_jobs (queue, id, timeout, max_retries, payload, state, run_at, traceparent)
           SELECT ${VALUES} FROM jsonb_to_recordset($1::jsonb) AS j(${COLUMNS})
           ON CONFLICT DO NOTHING
           RETURNING queue)
         SELECT queue, count(*)::int AS stored FROM stored GROUP BY queue`,
};

// Params: $1 the jobs as a JSON array, $2 the 1-based positions of those to store already
// leased (handed to a waiting request). A position is leased only when its queue has no older
// job ready (FIFO: that one would be claimed first) and is not paused. A (queue, id) that
// exists or repeats is skipped, the first wins. Returns (queue, id) of each job stored, and
// the delivery of each one leased (payload and state only for those).
const INSERT_LEASING = `INSERT INTO relay_jobs (queue, id, timeout, max_retries, payload, state, run_at, traceparent, run_id, attempt, lease_expires_at, leased_at)
           SELECT ${VALUES},
                  CASE WHEN h.leased THEN ${NEW_RUN_ID} END,
                  CASE WHEN h.leased THEN 1 ELSE 0 END,
                  CASE WHEN h.leased THEN ${LEASE_END} END,
                  CASE WHEN h.leased THEN now() END
           FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (${COLUMNS}))
                WITH ORDINALITY AS j(queue, id, timeout, max_retries, payload, state, run_at, traceparent, ord)
           CROSS JOIN LATERAL (
             SELECT CASE WHEN j.ord = ANY($2::bigint[]) THEN NOT EXISTS (
                      SELECT 1 FROM relay_jobs w WHERE w.queue = j.queue AND w.run_id IS NULL AND w.run_at <= now())
                      AND ${notPaused('j.queue')}
                    ELSE false END AS leased) h
           ORDER BY j.ord
           ON CONFLICT DO NOTHING
           RETURNING queue, id, run_id::text AS run_id, attempt, timeout, max_retries,
                     CASE WHEN run_id IS NOT NULL THEN payload END AS payload,
                     CASE WHEN run_id IS NOT NULL THEN state END AS state, run_at,
                     CASE WHEN run_id IS NOT NULL THEN traceparent END AS traceparent`;

const ENQUEUE_EACH: Statement = { name: 'relay_enqueue_each', text: INSERT_LEASING };

const ENQUEUE_EACH_KEYED: Statement = {
  name: 'relay_enqueue_each_keyed',
  // Params: $1 and $2 as ENQUEUE_EACH, $3 the keyed jobs' answers (KeyedItemAnswers, ord the
  // job's position in $1) as JSON, $4 the idempotency window in seconds. Stores the jobs as
  // ENQUEUE_EACH does and, in the same statement, each key with its answer: success when its
  // job was stored (the first of its (queue, id) in $1), else the refusal. Raises RLK01 when a
  // key was taken already, leaving nothing stored. Returns ENQUEUE_EACH's rows, after a first
  // column (taken, always false) that keeps the check in the result, and one row of nulls
  // when no job was stored.
  text: `WITH stored AS (${INSERT_LEASING}),
         items AS (
           SELECT j.queue, j.id, j.ord, j.ord = min(j.ord) OVER (PARTITION BY j.queue, j.id) AS first
           FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (queue text, id text)) WITH ORDINALITY AS j(queue, id, ord)),
         answers AS (
           SELECT ${PICKED_ANSWER}
           FROM jsonb_to_recordset($3::jsonb) AS a(${KEYED_ANSWER_COLUMNS})
           JOIN items i ON i.ord = a.ord
           CROSS JOIN LATERAL (SELECT i.first AND EXISTS (SELECT 1 FROM stored s WHERE s.queue = i.queue AND s.id = i.id) AS ok) o),
         ${rememberAnswersCte('$4')}
         SELECT c.taken, s.* FROM (SELECT ${KEYS_TAKEN_CHECK} AS taken) c LEFT JOIN stored s ON true`,
};

/** Stores jobs given as JSON text; returns how many were stored (the rest existed) in all and per queue. */
export async function insertJobs(db: Queryable, jobsJson: string): Promise<{ stored: number; queues: string[]; perQueue: Map<string, number> }> {
  const { rows } = await db.query<{ queue: string; stored: number }>(ENQUEUE_BATCH, [jobsJson]);
  const perQueue = new Map(rows.map((r) => [r.queue, r.stored]));
  return { stored: rows.reduce((n, r) => n + r.stored, 0), queues: [...perQueue.keys()], perQueue };
}

export interface StoredJob {
  queue: string;
  id: string;
  /** Set when the job was stored leased (handed off). */
  delivery: LeasedJob | undefined;
}

/** Stores jobs given as JSON text, leasing those at the given 1-based positions when FIFO allows. */
export async function insertJobsLeasing(db: Queryable, jobsJson: string, leasePositions: number[]): Promise<StoredJob[]> {
  const { rows } = await db.query<StoredRow>(ENQUEUE_EACH, [jobsJson, leasePositions]);
  return rows.map(toStoredJob);
}

/**
 * insertJobsLeasing with the answers of keyed jobs remembered in the same statement; throws the
 * database's RLK01 error (see takenKeys) when a key was taken already, and then stored nothing.
 */
export async function insertJobsLeasingKeyed(
  db: Queryable,
  jobsJson: string,
  leasePositions: number[],
  answers: KeyedItemAnswers[],
  windowSeconds: number,
): Promise<StoredJob[]> {
  const { rows } = await db.query<StoredRow & { taken: boolean }>(ENQUEUE_EACH_KEYED, [jobsJson, leasePositions, json(answers), windowSeconds]);
  return rows.filter((r) => r.id !== null).map(toStoredJob);
}

type StoredRow = Omit<LeasedRow, 'run_id'> & { run_id: string | null };

function toStoredJob(r: StoredRow): StoredJob {
  return { queue: r.queue, id: r.id, delivery: r.run_id === null ? undefined : toLeasedJob(r as LeasedRow) };
}

export const enqueueStatements = { ENQUEUE_BATCH, ENQUEUE_EACH, ENQUEUE_EACH_KEYED };
