/**
 * The shapes the server takes and returns: the contract's own, from the types generated from
 * openapi.yaml (a change there that the server does not follow fails `npm run typecheck`).
 */
import type { components } from '@relay-ts/client';

type Schemas = components['schemas'];

export type NewJob = Schemas['NewJob'];
export type RescheduleRequest = Schemas['RescheduleRequest'];
/** A job as `next` hands it out. */
export type LeasedJob = Schemas['Job'];
export type JobRef = Schemas['JobRef'];
export type CompleteBatchResult = Schemas['CompleteBatchResult'];
export type FailRequest = Schemas['FailRequest'];
export type FailResult = Schemas['FailResult'];
/** A delivery to complete, or (with `fail`) to fail, as `POST /v1/next` takes it. */
export type Settlement = Schemas['Settlement'];
export type Delivery = Schemas['Delivery'];
/** What the settlements of a `POST /v1/next` came to. */
export type Settled = Schemas['SettleAndNextResult']['settled'];
export type FailedJob = Schemas['FailedJob'];
export type Health = Schemas['Health'];
export type JobStatus = Schemas['JobStatus'];
export type JobDetails = Schemas['JobDetails'];
export type JobPage = Schemas['JobPage'];
export type QueueSummary = Schemas['QueueSummary'];
export type QueueThroughput = Schemas['QueueThroughput'];
export type ThroughputMinute = Schemas['ThroughputMinute'];
export type RetryFailedResult = Schemas['RetryFailedResult'];
export type PurgeFailedResult = Schemas['PurgeFailedResult'];

/** A heartbeat either replaces the state (null clears it) or leaves it alone. */
export type StateUpdate = { replace: true; state: unknown } | { replace: false };
