import type { Queryable, Statement } from '../db/index.js';
import type { LeasedJob } from '../jobs.js';
import { DELIVERED_COLUMNS, LEASE_END, NEW_RUN_ID, notPaused } from './rules.js';
import { toLeasedJob, type LeasedRow } from './rows.js';

export const NEXT: Statement = {
  name: 'relay_next',
  // Params: $1 queue, $2 how many. Claims up to $2 waiting jobs whose run_at has come, oldest
  // run_at first, then in enqueue order. The CTE with LIMIT ... FOR UPDATE SKIP LOCKED fixes
  // the set first; without it the planner may run the sub-select per row and claim more than
  // the limit (relay-rs 0.5.2). A paused queue leases nothing. Returns the deliveries in that
  // order.
  text: `WITH picked AS (
           SELECT queue, id FROM relay_jobs
           WHERE queue = $1 AND run_id IS NULL AND run_at <= now() AND ${notPaused('$1')}
           ORDER BY run_at, seq
           LIMIT $2
           FOR UPDATE SKIP LOCKED
         ), claimed AS (
           UPDATE relay_jobs j
           SET run_id = ${NEW_RUN_ID}, attempt = j.attempt + 1, lease_expires_at = ${LEASE_END}, leased_at = now()
           FROM picked p
           WHERE j.queue = p.queue AND j.id = p.id
           RETURNING ${DELIVERED_COLUMNS}, j.seq
         )
         SELECT id, queue, timeout, max_retries, payload, state, run_at, attempt, run_id, traceparent
         FROM claimed ORDER BY run_at, seq`,
};

/** Leases up to limit jobs of queue. */
export async function claimJobs(db: Queryable, queue: string, limit: number): Promise<LeasedJob[]> {
  const { rows } = await db.query<LeasedRow>(NEXT, [queue, limit]);
  return rows.map(toLeasedJob);
}
