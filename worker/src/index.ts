/** @relay-ts/worker: `new Worker({ queue, baseUrl, process })`, or subclass Worker and implement process(job); then start(). */
export { Worker, type WorkerEvents, type WorkerStatus, type WorkerJobCounts } from './worker.js';
export type { ActiveJob, RescheduleOptions } from './job.js';
export { workerDefaults, type WorkerOptions, type WorkerSettings, type ProcessFunction, type StartOptions } from './options.js';
export { LeaseLostError, WorkerStoppedError, JobSettledError, JobTimeoutError } from './errors.js';
export type { Logger } from './logger.js';
export { nodeTransport, type NodeTransport } from './node-transport.js';
export type { WorkerMetricsOptions, MetricsRegistry } from './metrics.js';
