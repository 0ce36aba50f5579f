/**
 * The public shapes of the client, derived from the types generated from openapi.yaml
 * (schema.ts). Only the generics are added here: `payload` and `state` take the caller's
 * types, and `run_at` also accepts a Date on the way in.
 */
import type { components } from './schema.js';

type Schemas = components['schemas'];

/** An RFC 9457 problem body, as every error response of the relay server carries. */
export type Problem = Schemas['Problem'];

/** A reference to one delivery of a job, as `completeBatch` takes and returns it. */
export type JobRef = Schemas['JobRef'];

/** What `completeBatch` answers: which jobs were completed and which were not found. */
export type CompleteBatchResult = Schemas['CompleteBatchResult'];

/** One delivery of a job (`queue`, `job_id` and its `run_id`), as `settleAndNext` settles it. */
export type Delivery = Schemas['Delivery'];

/** A delivery `settleAndNext` failed, with what `fail` answers for it. */
export type FailedDelivery = Schemas['FailedDelivery'];

/** What `settleAndNext` answers for the deliveries it settled: each in one list. */
export type Settled = Schemas['SettleAndNextResult']['settled'];

/** What `settleAndNext` answers: the settlements' outcomes and the jobs leased. */
export interface SettleAndNextResult<P = unknown, S = unknown> {
  jobs: Job<P, S>[];
  settled: Settled;
}

/** What `whoami` answers: the token's role, null when the server has no tokens. */
export type Whoami = Schemas['Whoami'];

/** What `health` answers. */
export type Health = Schemas['Health'];

/** `run_at` as the client accepts it: a Date or an RFC 3339 string. */
export type RunAtInput = Date | Schemas['RunAt'];

/** A job to enqueue. */
export type NewJob<P = unknown, S = unknown> = Omit<Schemas['NewJob'], 'payload' | 'state' | 'run_at'> & {
  payload?: P;
  state?: S;
  run_at?: RunAtInput;
};

/** A job's new settings for `reschedule`; `run_id` names the delivery being released. */
export type RescheduleJob<P = unknown, S = unknown> = Omit<Schemas['RescheduleRequest'], 'payload' | 'state' | 'run_at'> & {
  payload?: P;
  state?: S;
  run_at?: RunAtInput;
};

/** A job as `next` hands it out. `state` is absent when none is stored. */
export type Job<P = unknown, S = unknown> = Omit<Schemas['Job'], 'payload' | 'state'> & {
  payload: P;
  state?: S;
};

/** A job that used up its retries, as `listFailed` returns it. */
export type FailedJob<P = unknown, S = unknown> = Omit<Schemas['FailedJob'], 'payload' | 'state'> & {
  payload: P;
  state?: S;
};

/** A job as an operator sees it (`getJob`, `listJobs`): its status, counters and times. */
export type JobDetails<P = unknown, S = unknown> = Omit<Schemas['JobDetails'], 'payload' | 'state'> & {
  payload: P;
  state?: S;
};

export type JobStatus = Schemas['JobStatus'];

/** One page of `listJobs`; `next_cursor` is set when there may be more. */
export type JobPage<P = unknown, S = unknown> = Omit<Schemas['JobPage'], 'jobs'> & { jobs: JobDetails<P, S>[] };

/** A queue's counts, age of its oldest waiting job, and pause state. */
export type QueueSummary = Schemas['QueueSummary'];

/** A queue's jobs enqueued, completed and failed: totals and per minute (`throughput`, `queueThroughput`). */
export type QueueThroughput = Schemas['QueueThroughput'];
export type ThroughputMinute = Schemas['ThroughputMinute'];

export type RetryFailedResult = Schemas['RetryFailedResult'];
export type PurgeFailedResult = Schemas['PurgeFailedResult'];

type FailOutcome = Schemas['FailResult']['outcome'];

/** What `fail` answers: back in the queue from `run_at`, or moved to the failed jobs. */
export type FailResult =
  | { outcome: Extract<FailOutcome, 'retrying'>; run_at: NonNullable<Schemas['FailResult']['run_at']> }
  | { outcome: Extract<FailOutcome, 'failed'> };
