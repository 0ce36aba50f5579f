import type { Queryable, Statement } from '../db/index.js';
import type { FailedJob } from '../jobs.js';
import { toFailedJob, type FailedRow } from './rows.js';

const LIST_FAILED: Statement = {
  name: 'relay_list_failed',
  // Params: $1 queue, $2 id or NULL, $3 limit. Newest failure first.
  text: `SELECT id, queue, timeout, max_retries, payload, state, run_at, attempts, reason, failed_at
         FROM relay_failed_jobs
         WHERE queue = $1 AND ($2::text IS NULL OR id = $2)
         ORDER BY failure_id DESC
         LIMIT $3`,
};

export async function listFailedJobs(db: Queryable, queue: string, id: string | null, limit: number): Promise<FailedJob[]> {
  const { rows } = await db.query<FailedRow>(LIST_FAILED, [queue, id, limit]);
  return rows.map(toFailedJob);
}
