/** @relay-ts/worker: subclass Worker, implement process(job), start(). */
export { Worker, type WorkerEvents } from './worker.js';
export type { Job, RescheduleOptions } from './job.js';
export { workerDefaults, type WorkerOptions, type StartOptions } from './options.js';
export { LeaseLostError, WorkerStoppedError, JobSettledError, JobTimeoutError } from './errors.js';
export type { Logger } from './logger.js';
export { backoffDelay } from './backoff.js';
export { nodeTransport, type NodeTransport } from './node-transport.js';
