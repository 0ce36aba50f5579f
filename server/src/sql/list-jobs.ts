import type { Queryable, Statement } from '../db/index.js';
import type { JobDetails, JobStatus } from '../jobs.js';
import { FAILED_DETAILS, LIVE_DETAILS } from './rules.js';
import { toJobDetails, type DetailsRow } from './rows.js';

/*
 * One page of a queue's jobs in one status, keyset-paginated: each statement takes the sort
 * key of the last job of the previous page and returns the jobs after it, with their own sort
 * keys, so that a page never repeats a job and jobs added or removed elsewhere move nothing.
 * Each reads one index in order (sql/migrations: relay_jobs_waiting, relay_jobs_in_flight,
 * relay_failed_jobs_queue).
 */

/** Where the previous page ended, in the status's order; undefined: the first page. */
export type PagePosition =
  | { status: 'waiting' | 'scheduled'; runAt: string; seq: string }
  | { status: 'in_flight'; runId: string }
  | { status: 'failed'; failureId: string };

const BY_RUN_AT = (due: string): Statement['text'] =>
  `SELECT ${LIVE_DETAILS}, j.seq::text AS seq FROM relay_jobs j
   WHERE j.queue = $1 AND j.run_id IS NULL AND ${due} AND (j.run_at, j.seq) > ($2::timestamptz, $3::bigint)
   ORDER BY j.run_at, j.seq
   LIMIT $4`;

const LIST_WAITING: Statement = {
  name: 'relay_list_waiting',
  // Params: $1 queue, $2 run_at and $3 seq of the last job listed ('-infinity', 0 for none), $4 limit.
  text: BY_RUN_AT('j.run_at <= now()'),
};

const LIST_SCHEDULED: Statement = {
  name: 'relay_list_scheduled',
  // Params: as LIST_WAITING.
  text: BY_RUN_AT('j.run_at > now()'),
};

const LIST_IN_FLIGHT: Statement = {
  name: 'relay_list_in_flight',
  // Params: $1 queue, $2 run_id of the last job listed (0 for none), $3 limit. Delivery order.
  text: `SELECT ${LIVE_DETAILS} FROM relay_jobs j
         WHERE j.queue = $1 AND j.run_id IS NOT NULL AND j.run_id > $2::bigint
         ORDER BY j.run_id
         LIMIT $3`,
};

const LIST_FAILED: Statement = {
  name: 'relay_list_failed_page',
  // Params: $1 queue, $2 failure_id of the last job listed (NULL for none), $3 limit. Newest first.
  text: `SELECT ${FAILED_DETAILS}, f.failure_id::text AS failure_id FROM relay_failed_jobs f
         WHERE f.queue = $1 AND ($2::bigint IS NULL OR f.failure_id < $2::bigint)
         ORDER BY f.failure_id DESC
         LIMIT $3`,
};

type PageRow = DetailsRow & { seq?: string; failure_id?: string };

/** The next `limit` jobs of queue in status after `after`, each with the position it ends a page at. */
export async function listJobs(
  db: Queryable,
  queue: string,
  status: JobStatus,
  after: PagePosition | undefined,
  limit: number,
): Promise<Array<{ job: JobDetails; position: PagePosition }>> {
  let rows: PageRow[];
  if (status === 'waiting' || status === 'scheduled') {
    const from = after?.status === status ? after : { runAt: '-infinity', seq: '0' };
    rows = (await db.query<PageRow>(status === 'waiting' ? LIST_WAITING : LIST_SCHEDULED, [queue, from.runAt, from.seq, limit])).rows;
    return rows.map((r) => ({ job: toJobDetails(r), position: { status, runAt: r.run_at, seq: r.seq! } }));
  }
  if (status === 'in_flight') {
    const from = after?.status === 'in_flight' ? after.runId : '0';
    rows = (await db.query<PageRow>(LIST_IN_FLIGHT, [queue, from, limit])).rows;
    return rows.map((r) => ({ job: toJobDetails(r), position: { status, runId: r.run_id! } }));
  }
  const from = after?.status === 'failed' ? after.failureId : null;
  rows = (await db.query<PageRow>(LIST_FAILED, [queue, from, limit])).rows;
  return rows.map((r) => ({ job: toJobDetails(r), position: { status: 'failed', failureId: r.failure_id! } }));
}

export const listStatements = { LIST_WAITING, LIST_SCHEDULED, LIST_IN_FLIGHT, LIST_FAILED };
