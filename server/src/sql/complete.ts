import type { Queryable, Statement } from '../db/index.js';
import type { JobRef } from '../jobs.js';
import { json } from './rows.js';

export const COMPLETE: Statement = {
  name: 'relay_complete',
  // Params: $1 [{queue, job_id, run_id?}] as JSON. Removes each listed job that exists (and,
  // where run_id is given, is still in that delivery). Returns (queue, id, the job's run_id,
  // seconds since its delivery began when it was in flight) for each job removed.
  text: `DELETE FROM relay_jobs j
         USING jsonb_to_recordset($1::jsonb) AS r(queue text, job_id text, run_id text)
         WHERE j.queue = r.queue AND j.id = r.job_id AND (r.run_id IS NULL OR j.run_id::text = r.run_id)
         RETURNING j.queue, j.id, j.run_id::text AS run_id,
                   CASE WHEN j.run_id IS NOT NULL THEN EXTRACT(EPOCH FROM now() - j.leased_at)::float8 END AS processed_seconds`,
};

export interface RemovedJob {
  queue: string;
  id: string;
  run_id: string | null;
  /** Since the delivery began; null when the job was not in flight. */
  processed_seconds: number | null;
}

/** Removes the referenced jobs; returns those removed with the run_id they had. */
export async function deleteJobs(db: Queryable, refs: JobRef[]): Promise<RemovedJob[]> {
  const { rows } = await db.query<RemovedJob>(COMPLETE, [json(refs)]);
  return rows;
}
