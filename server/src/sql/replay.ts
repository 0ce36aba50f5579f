import type { Queryable, Statement } from '../db/index.js';
import type { JobDetails } from '../jobs.js';
import { LIVE_DETAILS } from './rules.js';
import { toJobDetails, type DetailsRow } from './rows.js';

/*
 * Failed jobs back to their queues (replay) or deleted (purge). A replayed job is enqueued
 * anew from its kept failure: waiting now, with its payload and last state, no retries used,
 * no deliveries; the failure row it came from is removed in the same statement.
 */

const STORE_FROM = (source: string) => `INSERT INTO relay_jobs (queue, id, timeout, max_retries, payload, state, traceparent)
           SELECT queue, id, timeout, max_retries, payload, state, traceparent FROM ${source} ORDER BY failure_id
           ON CONFLICT DO NOTHING`;

const RETRY_ONE: Statement = {
  name: 'relay_retry_failed_job',
  // Params: $1 queue, $2 id. Replays the job's latest failure unless a job (queue, id) is live.
  // Returns one row: whether a failure was found, and the job stored (NULL columns if none).
  text: `WITH latest AS (
           SELECT * FROM relay_failed_jobs WHERE queue = $1 AND id = $2 ORDER BY failure_id DESC LIMIT 1 FOR UPDATE
         ), stored AS (
           ${STORE_FROM('latest')}
           RETURNING *
         ), removed AS (
           DELETE FROM relay_failed_jobs d USING latest l WHERE d.failure_id = l.failure_id AND EXISTS (SELECT 1 FROM stored)
         )
         SELECT (SELECT count(*) FROM latest)::int AS found, s.*
         FROM (SELECT 1) one LEFT JOIN (SELECT ${LIVE_DETAILS} FROM stored j) s ON true`,
};

const RETRY_BATCH: Statement = {
  name: 'relay_retry_failed_batch',
  // Params: $1 queue, $2 failed before (NULL: any time), $3 failure_id to continue after,
  // $4 batch size. Replays the latest failure of each id in the batch whose id is not live;
  // the rest stay. Returns how many failures were scanned, how many replayed, and the last
  // failure_id scanned (where the next batch starts).
  text: `WITH batch AS (
           SELECT * FROM relay_failed_jobs
           WHERE queue = $1 AND ($2::timestamptz IS NULL OR failed_at < $2) AND failure_id > $3::bigint
           ORDER BY failure_id LIMIT $4
           FOR UPDATE SKIP LOCKED
         ), latest AS (
           SELECT DISTINCT ON (id) * FROM batch ORDER BY id, failure_id DESC
         ), stored AS (
           ${STORE_FROM('latest')}
           RETURNING id
         ), removed AS (
           DELETE FROM relay_failed_jobs d USING latest l JOIN stored s ON s.id = l.id WHERE d.failure_id = l.failure_id
         )
         SELECT (SELECT count(*) FROM batch)::int AS scanned, (SELECT count(*) FROM stored)::int AS retried,
                (SELECT max(failure_id) FROM batch)::text AS last`,
};

const PURGE_BATCH: Statement = {
  name: 'relay_purge_failed_batch',
  // Params: $1 queue, $2 failed before (NULL: any time), $3 batch size. Deletes one batch of
  // the queue's failed jobs, oldest first. Returns how many (rowCount).
  text: `WITH doomed AS (
           SELECT failure_id FROM relay_failed_jobs
           WHERE queue = $1 AND ($2::timestamptz IS NULL OR failed_at < $2)
           ORDER BY failure_id LIMIT $3
           FOR UPDATE SKIP LOCKED
         )
         DELETE FROM relay_failed_jobs f USING doomed d WHERE f.failure_id = d.failure_id`,
};

const PURGE_RETAINED: Statement = {
  name: 'relay_purge_retained',
  // Params: $1 retention in seconds, $2 batch size. Deletes one batch of failed jobs, of any
  // queue, that failed longer ago than the retention, oldest first. Returns how many (rowCount).
  text: `WITH doomed AS (
           SELECT failure_id FROM relay_failed_jobs
           WHERE failed_at < now() - $1::float8 * interval '1 second'
           ORDER BY failed_at LIMIT $2
           FOR UPDATE SKIP LOCKED
         )
         DELETE FROM relay_failed_jobs f USING doomed d WHERE f.failure_id = d.failure_id`,
};

/** Replays the latest failure of (queue, id): the job stored, or why not. */
export async function retryFailedJob(db: Queryable, queue: string, id: string): Promise<{ found: boolean; job: JobDetails | undefined }> {
  const { rows } = await db.query<DetailsRow & { found: number }>(RETRY_ONE, [queue, id]);
  const row = rows[0]!;
  return { found: row.found > 0, job: row.id === null ? undefined : toJobDetails(row) };
}

/** One batch of a queue's failures replayed; `last` is where the next batch starts (null: none scanned). */
export async function retryFailedBatch(
  db: Queryable,
  queue: string,
  failedBefore: string | null,
  after: string,
  batch: number,
): Promise<{ scanned: number; retried: number; last: string | null }> {
  const { rows } = await db.query<{ scanned: number; retried: number; last: string | null }>(RETRY_BATCH, [queue, failedBefore, after, batch]);
  return rows[0]!;
}

/** Deletes one batch of a queue's failed jobs; returns how many. */
export async function purgeFailedBatch(db: Queryable, queue: string, failedBefore: string | null, batch: number): Promise<number> {
  return (await db.query(PURGE_BATCH, [queue, failedBefore, batch])).rowCount;
}

/** Deletes one batch of failed jobs older than the retention; returns how many. */
export async function purgeRetainedBatch(db: Queryable, retentionSeconds: number, batch: number): Promise<number> {
  return (await db.query(PURGE_RETAINED, [retentionSeconds, batch])).rowCount;
}
