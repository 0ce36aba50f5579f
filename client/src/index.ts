/** @relay-ts/client: a typed client of the relay job queue, generated from openapi.yaml. */
export {
  RelayClient,
  MAX_ENQUEUE_BATCH,
  MAX_COMPLETE_BATCH,
  type RelayClientOptions,
  type NextOptions,
  type HeartbeatOptions,
  type CompleteOptions,
  type FailOptions,
  type ListFailedOptions,
  type ListJobsOptions,
  type FailedJobsOptions,
  type EnqueueBatchOptions,
  type CompleteBatchOptions,
} from './client.js';
export {
  RelayError,
  ValidationError,
  JobNotFoundError,
  RouteNotFoundError,
  UnauthorizedError,
  ForbiddenError,
  JobExistsError,
  PayloadTooLargeError,
  PermanentError,
  RetryableError,
} from './errors.js';
export { defaultRetryOptions, defaultTimeoutMs, type RequestOptions, type WriteOptions, type RetryOptions, type RetryEvent } from './send.js';
export type {
  NewJob,
  RescheduleJob,
  Job,
  FailedJob,
  JobDetails,
  JobStatus,
  JobPage,
  QueueSummary,
  RetryFailedResult,
  PurgeFailedResult,
  FailResult,
  JobRef,
  CompleteBatchResult,
  Health,
  Whoami,
  Problem,
  RunAtInput,
} from './types.js';
export type { paths, components, operations } from './schema.js';
