import type { Queryable, Statement } from '../db/index.js';

const CANCEL_JOB: Statement = {
  name: 'relay_cancel_job',
  // Params: $1 queue, $2 id. Deletes the live job (waiting, scheduled or in flight: its
  // worker's next heartbeat or completion answers 404); when there is none, purges the
  // job's kept failures. Returns how many of each.
  text: `WITH live AS (
           DELETE FROM relay_jobs WHERE queue = $1 AND id = $2 RETURNING 1
         ), purged AS (
           DELETE FROM relay_failed_jobs WHERE queue = $1 AND id = $2 AND NOT EXISTS (SELECT 1 FROM live) RETURNING 1
         )
         SELECT (SELECT count(*) FROM live)::int AS cancelled, (SELECT count(*) FROM purged)::int AS purged`,
};

/** Removes the live job (queue, id), or else its failures; says how many of each. */
export async function cancelJob(db: Queryable, queue: string, id: string): Promise<{ cancelled: number; purged: number }> {
  const { rows } = await db.query<{ cancelled: number; purged: number }>(CANCEL_JOB, [queue, id]);
  return rows[0] ?? { cancelled: 0, purged: 0 };
}
