import type { Queryable, Statement } from '../db/index.js';
import type { JobDetails } from '../jobs.js';
import { FAILED_DETAILS, LIVE_DETAILS } from './rules.js';
import { toJobDetails, type DetailsRow } from './rows.js';

const FIND_JOB: Statement = {
  name: 'relay_find_job',
  // Params: $1 queue, $2 id. The live job (waiting, scheduled or in flight) if there is one,
  // else its latest kept failure, else no row.
  text: `SELECT * FROM (
           SELECT 0 AS rank, ${LIVE_DETAILS} FROM relay_jobs j WHERE j.queue = $1 AND j.id = $2
           UNION ALL
           (SELECT 1, ${FAILED_DETAILS} FROM relay_failed_jobs f WHERE f.queue = $1 AND f.id = $2 ORDER BY f.failure_id DESC LIMIT 1)
         ) found
         ORDER BY rank LIMIT 1`,
};

/** The job (queue, id) as an operator sees it, or undefined. */
export async function findJob(db: Queryable, queue: string, id: string): Promise<JobDetails | undefined> {
  const { rows } = await db.query<DetailsRow>(FIND_JOB, [queue, id]);
  return rows[0] && toJobDetails(rows[0]);
}
