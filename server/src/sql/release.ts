import type { Queryable, Statement } from '../db/index.js';
import { json } from './rows.js';

const RELEASE: Statement = {
  name: 'relay_release',
  // Params: $1 [{queue, id, run_id}] as JSON: deliveries nobody received. Puts them back as if
  // never handed out: no retry, no attempt counted. A job delivered again since is left alone.
  text: `UPDATE relay_jobs j
         SET run_id = NULL, lease_expires_at = NULL, attempt = j.attempt - 1
         FROM jsonb_to_recordset($1::jsonb) AS r(queue text, id text, run_id text)
         WHERE j.queue = r.queue AND j.id = r.id AND j.run_id::text = r.run_id`,
};

/** Undoes deliveries that never reached their client. */
export async function releaseDeliveries(db: Queryable, deliveries: Array<{ queue: string; id: string; run_id: string }>): Promise<void> {
  await db.query(RELEASE, [json(deliveries.map(({ queue, id, run_id }) => ({ queue, id, run_id })))]);
}
