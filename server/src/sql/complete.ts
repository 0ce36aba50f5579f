import type { Queryable, Statement } from '../db/index.js';
import type { JobRef } from '../jobs.js';
import { KEYED_ANSWER_COLUMNS, KEYS_TAKEN_CHECK, PICKED_ANSWER, rememberAnswersCte, type KeyedItemAnswers } from './idempotency.js';
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

const COMPLETE_KEYED: Statement = {
  name: 'relay_complete_keyed',
  // Params: $1 as COMPLETE, $2 the keyed references' answers (KeyedItemAnswers, ord the
  // reference's position in $1) as JSON, $3 the idempotency window in seconds. Removes the jobs
  // as COMPLETE does and, in the same statement, stores each key with its answer: success when
  // its reference removed a job (a job listed twice counts for the first reference that matches
  // it), else the refusal. Raises RLK01 when a key was taken already, leaving nothing removed.
  // Returns COMPLETE's rows, after a first column (taken, always false) that keeps the check
  // in the result, and one row of nulls when no job was removed.
  text: `WITH refs AS (
           SELECT * FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (queue text, job_id text, run_id text))
                WITH ORDINALITY AS r(queue, job_id, run_id, ord)),
         removed AS (
           DELETE FROM relay_jobs j USING refs r
           WHERE j.queue = r.queue AND j.id = r.job_id AND (r.run_id IS NULL OR j.run_id::text = r.run_id)
           RETURNING j.queue, j.id, j.run_id::text AS run_id,
                     CASE WHEN j.run_id IS NOT NULL THEN EXTRACT(EPOCH FROM now() - j.leased_at)::float8 END AS processed_seconds),
         matched AS (
           SELECT r.ord, row_number() OVER (PARTITION BY r.queue, r.job_id ORDER BY r.ord) AS nth
           FROM refs r JOIN removed d ON d.queue = r.queue AND d.id = r.job_id AND (r.run_id IS NULL OR r.run_id = d.run_id)),
         answers AS (
           SELECT ${PICKED_ANSWER}
           FROM jsonb_to_recordset($2::jsonb) AS a(${KEYED_ANSWER_COLUMNS})
           CROSS JOIN LATERAL (SELECT EXISTS (SELECT 1 FROM matched m WHERE m.ord = a.ord AND m.nth = 1) AS ok) o),
         ${rememberAnswersCte('$3')}
         SELECT c.taken, d.* FROM (SELECT ${KEYS_TAKEN_CHECK} AS taken) c LEFT JOIN removed d ON true`,
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

/**
 * deleteJobs with the answers of keyed references remembered in the same statement; throws the
 * database's RLK01 error (see takenKeys) when a key was taken already, and then removed nothing.
 */
export async function deleteJobsKeyed(db: Queryable, refs: JobRef[], answers: KeyedItemAnswers[], windowSeconds: number): Promise<RemovedJob[]> {
  const { rows } = await db.query<RemovedJob & { taken: boolean }>(COMPLETE_KEYED, [json(refs), json(answers), windowSeconds]);
  return rows.filter((r) => r.id !== null);
}
