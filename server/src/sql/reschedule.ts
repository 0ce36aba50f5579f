import type { Queryable, Statement } from '../db/index.js';

const RESCHEDULE: Statement = {
  name: 'relay_reschedule',
  // Params: $1 queue, $2 id, $3 timeout, $4 max_retries, $5 payload, $6 state, $7 run_at or
  // NULL (now), $8 run_id or NULL. Releases an in-flight job as if newly enqueued (fresh retry
  // budget, attempt count and FIFO position). Returns 1 row or 0 (not in flight).
  text: `UPDATE relay_jobs
         SET timeout = $3, max_retries = $4, retries = 0, attempt = 0,
             payload = $5::jsonb, state = $6::jsonb, run_at = COALESCE($7::timestamptz, now()),
             seq = nextval('relay_job_seq'), run_id = NULL, lease_expires_at = NULL
         WHERE queue = $1 AND id = $2 AND run_id IS NOT NULL AND ($8::text IS NULL OR run_id::text = $8)
         RETURNING 1 AS released`,
};

export interface Rescheduling {
  queue: string;
  id: string;
  timeout: number;
  maxRetries: number;
  payloadJson: string;
  stateJson: string | null;
  /** Canonical UTC text, or null for now. */
  runAt: string | null;
  runId: string | null;
}

/** Releases an in-flight job with new settings; false when it is not in flight. */
export async function rescheduleJob(db: Queryable, r: Rescheduling): Promise<boolean> {
  const { rows } = await db.query(RESCHEDULE, [r.queue, r.id, r.timeout, r.maxRetries, r.payloadJson, r.stateJson, r.runAt, r.runId]);
  return rows.length > 0;
}
