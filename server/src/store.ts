import type { Queryable } from './db/index.js';
import { Coalescer } from './coalescer.js';
import { JobExistsError, JobNotFoundError, ServiceUnavailableError, StorageUnavailableError, toRelayError } from './errors.js';
import type { HandOff } from './hand-off.js';
import { checkJobKey } from './job-rules.js';
import type { CompleteBatchResult, FailResult, FailedJob, JobRef, NewJob, RescheduleRequest, StateUpdate } from './jobs.js';
import { deleteJobs } from './sql/complete.js';
import { insertJobs, insertJobsLeasing } from './sql/enqueue.js';
import { failJob } from './sql/fail.js';
import { listFailedJobs } from './sql/failed-jobs.js';
import { renewLease } from './sql/heartbeat.js';
import { ping } from './sql/ping.js';
import { reapExpiredLeases } from './sql/reap.js';
import { rescheduleJob } from './sql/reschedule.js';
import { json, stateParam } from './sql/rows.js';
import { formatTimestamp, parseRfc3339 } from './time.js';

/**
 * The job operations of the API, over the statements of sql/: what each request means for
 * the database, the checks that must come before a statement, and who must hear of a change.
 * Every operation is one statement, atomic on its own.
 */

/** Told which queues just got jobs a `next` could take (to wake long polls). */
export type AvailabilityListener = (queues: string[]) => void;

// Single enqueues and completes that arrive together share one statement (see Coalescer). A
// shared statement that fails is retried per request, unless the database is unavailable:
// then every request would fail alike, and retrying each would only add load.
const COALESCE_OPTIONS = {
  maxBatch: 1000,
  maxConcurrent: 2,
  isolateOn: (err: unknown) => !(toRelayError(err) instanceof StorageUnavailableError),
};

const REAP_BATCH = 1000;

const key = (...parts: Array<string | null>) => JSON.stringify(parts);

/** The job with its run_at (if any) in the canonical UTC text; throws a 400 naming path. */
function withStoredRunAt<T extends NewJob>(job: T, path: string): T {
  return job.run_at === undefined ? job : { ...job, run_at: parseRfc3339(job.run_at, path) };
}

export interface StoreOptions {
  onAvailable?: AvailabilityListener;
  /** Requests waiting for jobs, to which a single enqueue may hand its job at once. */
  handOff?: HandOff;
}

export class Store {
  private readonly enqueues = new Coalescer<NewJob, void>((jobs) => this.enqueueEach(jobs), COALESCE_OPTIONS);
  private readonly completes = new Coalescer<JobRef, boolean>((refs) => this.completeEach(refs), COALESCE_OPTIONS);
  private readonly onAvailable: AvailabilityListener;
  private readonly handOff: HandOff | undefined;

  constructor(
    private readonly db: Queryable,
    options: StoreOptions = {},
  ) {
    this.onAvailable = options.onAvailable ?? (() => undefined);
    this.handOff = options.handOff;
  }

  /** Throws JobExistsError when (queue, id) is waiting or in flight. */
  async enqueue(job: NewJob): Promise<void> {
    // Checked before the job joins a shared statement: its refusal must be its own.
    checkJobKey(job, '/body');
    await this.enqueues.submit(withStoredRunAt(job, '/body/run_at'));
  }

  /** Returns how many jobs were stored; the rest already existed. */
  async enqueueBatch(jobs: NewJob[]): Promise<number> {
    if (jobs.length === 0) return 0;
    jobs.forEach((job, i) => checkJobKey(job, `/body/${i}`));
    const canonical = jobs.map((job, i) => withStoredRunAt(job, `/body/${i}/run_at`));
    const { stored, queues } = await insertJobs(this.db, json(canonical));
    if (queues.length > 0) this.onAvailable(queues);
    return stored;
  }

  /**
   * Stores single enqueues together; each job not stored gets its JobExistsError. Where a
   * request waits for a job's queue, the job may be stored already leased to it (HandOff).
   */
  private async enqueueEach(jobs: NewJob[]): Promise<Array<undefined | Error>> {
    const plan = this.handOff?.plan(jobs);
    let stored;
    try {
      stored = await insertJobsLeasing(this.db, json(jobs), plan?.positions ?? []);
    } catch (err) {
      plan?.cancel();
      throw err;
    }
    plan?.settle(stored.flatMap((s) => (s.delivery ? [s.delivery] : [])));
    const waiting = new Set(stored.filter((s) => !s.delivery).map((s) => s.queue));
    const keys = new Set(stored.map((s) => key(s.queue, s.id)));
    // The first of two requests for one (queue, id) is the one stored.
    const results = jobs.map((job) => (keys.delete(key(job.queue, job.id)) ? undefined : new JobExistsError(job.queue, job.id)));
    if (waiting.size > 0) this.onAvailable([...waiting]);
    return results;
  }

  async heartbeat(queue: string, id: string, update: StateUpdate, runId?: string): Promise<void> {
    const state = update.replace ? { replace: true as const, json: stateParam(update.state) } : { replace: false as const };
    if (!(await renewLease(this.db, queue, id, runId ?? null, state))) throw new JobNotFoundError(queue, id, true);
  }

  async reschedule(job: RescheduleRequest): Promise<void> {
    const released = await rescheduleJob(this.db, {
      queue: job.queue,
      id: job.id,
      timeout: job.timeout,
      maxRetries: job.max_retries ?? 0,
      payloadJson: json(job.payload ?? null),
      stateJson: stateParam(job.state),
      runAt: job.run_at === undefined ? null : parseRfc3339(job.run_at, '/body/run_at'),
      runId: job.run_id ?? null,
    });
    if (!released) throw new JobNotFoundError(job.queue, job.id, true);
    this.onAvailable([job.queue]);
  }

  async complete(queue: string, id: string, runId?: string): Promise<void> {
    const removed = await this.completes.submit({ queue, job_id: id, run_id: runId });
    if (!removed) throw new JobNotFoundError(queue, id, false);
  }

  async completeBatch(refs: JobRef[]): Promise<CompleteBatchResult> {
    const removed = await this.completeEach(refs);
    return {
      completed: refs.filter((_, i) => removed[i]),
      not_found: refs.filter((_, i) => !removed[i]),
    };
  }

  /**
   * For each reference, whether it removed its job. A job listed twice counts for the first
   * reference that matches it (any run_id, or the job's own).
   */
  private async completeEach(refs: JobRef[]): Promise<boolean[]> {
    if (refs.length === 0) return [];
    const rows = await deleteJobs(this.db, refs);
    const removed = new Map(rows.map((r) => [key(r.queue, r.id), r.run_id]));
    return refs.map((ref) => {
      const k = key(ref.queue, ref.job_id);
      if (!removed.has(k)) return false;
      if (ref.run_id !== undefined && ref.run_id !== removed.get(k)) return false;
      removed.delete(k);
      return true;
    });
  }

  async fail(queue: string, id: string, options: { runId?: string; error?: string; retryIn?: number }): Promise<FailResult> {
    const row = await failJob(this.db, {
      queue,
      id,
      runId: options.runId ?? null,
      reason: options.error ?? 'failed by worker',
      retryInSeconds: options.retryIn ?? null,
    });
    if (!row) throw new JobNotFoundError(queue, id, true);
    if (row.outcome === 'failed') return { outcome: 'failed' };
    // A retry may be due at once (retry_in 0): waiting polls must hear of it.
    this.onAvailable([queue]);
    return { outcome: 'retrying', run_at: formatTimestamp(row.run_at) };
  }

  async listFailed(queue: string, id: string | undefined, limit: number): Promise<FailedJob[]> {
    return listFailedJobs(this.db, queue, id ?? null, limit);
  }

  /** Returns expired leases to their queues or to the failed jobs; counts what it did. */
  async reapExpired(): Promise<{ retried: number; failed: number }> {
    const total = { retried: 0, failed: 0 };
    for (;;) {
      const { retried, failed, queues } = await reapExpiredLeases(this.db, REAP_BATCH);
      if (queues.length > 0) this.onAvailable(queues);
      total.retried += retried;
      total.failed += failed;
      if (retried + failed < REAP_BATCH) return total;
    }
  }

  /** Throws ServiceUnavailableError when the database does not answer. */
  async ping(): Promise<void> {
    try {
      await ping(this.db);
    } catch (err) {
      throw new ServiceUnavailableError(`the database did not answer: ${toRelayError(err).message}`);
    }
  }
}
