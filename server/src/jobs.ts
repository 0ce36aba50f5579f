/** The shapes the store takes and returns; openapi.yaml is the contract they follow. */

export type Json = unknown;

export interface NewJob {
  id: string;
  queue: string;
  timeout: number;
  max_retries?: number;
  payload?: Json;
  state?: Json;
  run_at?: string;
}

export interface RescheduleRequest extends NewJob {
  run_id?: string;
}

export interface LeasedJob {
  id: string;
  queue: string;
  timeout: number;
  max_retries: number;
  payload: Json;
  state?: Json;
  run_at: string;
  attempt: number;
  run_id: string;
}

export interface JobRef {
  queue: string;
  job_id: string;
  run_id?: string;
}

export interface CompleteBatchResult {
  completed: JobRef[];
  not_found: JobRef[];
}

export type FailOutcome = { outcome: 'retrying'; run_at: string } | { outcome: 'failed' };

export interface FailedJob {
  id: string;
  queue: string;
  timeout: number;
  max_retries: number;
  payload: Json;
  state?: Json;
  run_at: string;
  attempts: number;
  reason: string;
  failed_at: string;
}

/** A heartbeat either replaces the state (null clears it) or leaves it alone. */
export type StateUpdate = { replace: true; state: Json } | { replace: false };
