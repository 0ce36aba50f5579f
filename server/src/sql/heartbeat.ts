import type { Queryable, Statement } from '../db/index.js';
import { LEASE_END } from './rules.js';

export const HEARTBEAT: Statement = {
  name: 'relay_heartbeat',
  // Params: $1 queue, $2 id, $3 replace state?, $4 state (JSON text or NULL), $5 run_id or NULL.
  // Touches only unindexed columns, so it is a HOT update. Returns 1 row or 0 (not in flight).
  text: `UPDATE relay_jobs j
         SET lease_expires_at = ${LEASE_END},
             state = CASE WHEN $3::boolean THEN $4::jsonb ELSE j.state END
         WHERE j.queue = $1 AND j.id = $2 AND j.run_id IS NOT NULL AND ($5::text IS NULL OR j.run_id::text = $5)`,
};

/** Renews an in-flight job's lease, replacing its state when `state` is given (null clears it). Returns false when not in flight. */
export async function renewLease(
  db: Queryable,
  queue: string,
  id: string,
  runId: string | null,
  state: { replace: false } | { replace: true; json: string | null },
): Promise<boolean> {
  const { rowCount } = await db.query(HEARTBEAT, [queue, id, state.replace, state.replace ? state.json : null, runId]);
  return rowCount > 0;
}
