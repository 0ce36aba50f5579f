/**
 * The errors the runtime raises itself. Errors of the server calls are the client's
 * (`RelayError` and its subclasses, from @relay-ts/client).
 */

/**
 * This delivery no longer holds the job: the server answered 404 to a heartbeat, reschedule,
 * fail or complete sent with the job's `run_id` (its lease expired and the job went back to
 * the queue, was delivered again, or is gone), or the lease ended by the worker's own clock
 * with no heartbeat answered in time (the server may hand the job to another worker). The
 * job's `signal` aborts with this reason; `cause` says which.
 */
export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
  constructor(
    readonly queue: string,
    readonly jobId: string,
    readonly runId: string,
    options?: { cause?: unknown },
  ) {
    super(`lost the lease of job ${JSON.stringify(jobId)} in queue ${JSON.stringify(queue)} (run ${runId})`, options);
  }
}

/**
 * `stop()` gave up waiting for the job (its `shutdownTimeoutMs` passed, or a second signal
 * came). The job's `signal` aborts with this reason; the job stays leased and comes back when
 * its lease expires.
 */
export class WorkerStoppedError extends Error {
  override readonly name = 'WorkerStoppedError';
  constructor(
    readonly queue: string,
    readonly jobId: string,
  ) {
    super(`the worker stopped before job ${JSON.stringify(jobId)} in queue ${JSON.stringify(queue)} finished; it stays leased`);
  }
}

/**
 * `heartbeat`, `reschedule` or `fail` on a job that was already rescheduled, failed or
 * completed, or whose `process` has already returned.
 */
export class JobSettledError extends Error {
  override readonly name = 'JobSettledError';
  constructor(
    readonly queue: string,
    readonly jobId: string,
    readonly settled: 'rescheduled' | 'failed' | 'completed' | 'returned',
  ) {
    const what = settled === 'returned' ? 'finished (process returned)' : settled;
    super(`job ${JSON.stringify(jobId)} in queue ${JSON.stringify(queue)} was already ${what}`);
  }
}

/**
 * `process` ran longer than the worker's `jobTimeoutMs`. The job's `signal` aborts with this
 * reason and the job is failed with its message, as if `process` had thrown it.
 */
export class JobTimeoutError extends Error {
  override readonly name = 'JobTimeoutError';
  constructor(
    readonly queue: string,
    readonly jobId: string,
    readonly timeoutMs: number,
  ) {
    super(`job ${JSON.stringify(jobId)} in queue ${JSON.stringify(queue)} ran longer than jobTimeoutMs (${timeoutMs} ms)`);
  }
}
