import { inBatches } from './batches.js';
import type { Database } from './db/index.js';
import { BadRequestError, FailedJobNotFoundError, JobExistsError, JobNotFoundError } from './errors.js';
import type { JobEvents } from './job-events.js';
import type { JobDetails, JobPage, JobStatus, PurgeFailedResult, QueueSummary, QueueThroughput, RetryFailedResult } from './jobs.js';
import { cancelJob } from './sql/cancel.js';
import { findJob } from './sql/job-details.js';
import { listJobs, type PagePosition } from './sql/list-jobs.js';
import { foldCountDeltas, pruneEmptyCounts } from './sql/queue-counts.js';
import { pauseQueue, queueSummaries, queueSummary, resumeQueue } from './sql/queues.js';
import { pruneThroughputBatch } from './sql/prune-throughput.js';
import { purgeFailedBatch, purgeRetainedBatch, retryFailedBatch, retryFailedJob } from './sql/replay.js';
import { readThroughput } from './sql/throughput.js';
import { THROUGHPUT_KEPT_MINUTES, throughputSeries } from './throughput.js';
import { parseRfc3339 } from './time.js';

/**
 * What an operator does to queues and jobs (issue 12): look up, list, count, pause, cancel,
 * replay, purge, read the throughput, and the reaper's share (folding counts, retention,
 * pruning the throughput). Bulk work runs in bounded batches, each its own short statement, so
 * that none holds many locks for long.
 */

const BATCH = 1000;

/** A page cursor: the page's status and where it ended, opaque to clients (base64url JSON). */
function encodeCursor(position: PagePosition): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url');
}

function decodeCursor(cursor: string, status: JobStatus): PagePosition {
  let position: unknown;
  try {
    position = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    position = undefined;
  }
  const p = position as Partial<Record<string, unknown>> | undefined;
  const digits = (v: unknown) => typeof v === 'string' && /^\d{1,19}$/.test(v);
  const valid =
    p !== null && typeof p === 'object' && p.status === status &&
    (status === 'in_flight' ? digits(p.runId)
      : status === 'failed' ? digits(p.failureId)
      : digits(p.seq) && typeof p.runAt === 'string' && p.runAt.length <= 64 && /^[0-9 :.+-]+$/.test(p.runAt));
  if (!valid) {
    throw new BadRequestError('the cursor is not one this server gave for this status; start again without it', [
      { path: '/query/cursor', message: `must be the next_cursor of a page of ${status} jobs` },
    ]);
  }
  return position as PagePosition;
}

export class Operations {
  constructor(
    private readonly db: Database,
    private readonly options: {
      /** Told of queues whose jobs may now be leased (a resume, a replay). */
      onAvailable: (queues: string[]) => void;
      /** Failed jobs older than this are purged by the reaper; 0 keeps them forever. */
      failedRetentionSeconds: number;
      /** Told of each cancelled job (metrics). */
      events?: Pick<JobEvents, 'cancelled'>;
    },
  ) {}

  async job(queue: string, id: string): Promise<JobDetails> {
    const job = await findJob(this.db, queue, id);
    if (!job) throw new JobNotFoundError(queue, id, false);
    return job;
  }

  async jobExists(queue: string, id: string): Promise<boolean> {
    return (await findJob(this.db, queue, id)) !== undefined;
  }

  async listJobs(queue: string, status: JobStatus, limit: number, cursor: string | undefined): Promise<JobPage> {
    const after = cursor === undefined ? undefined : decodeCursor(cursor, status);
    const rows = await listJobs(this.db, queue, status, after, limit);
    const page: JobPage = { jobs: rows.map((r) => r.job) };
    if (rows.length === limit) page.next_cursor = encodeCursor(rows[rows.length - 1]!.position);
    return page;
  }

  async queues(): Promise<QueueSummary[]> {
    return queueSummaries(this.db);
  }

  async queue(queue: string): Promise<QueueSummary> {
    return queueSummary(this.db, queue);
  }

  /** Every queue's throughput over the last `minutes` minutes (those with something counted). */
  async throughput(minutes: number): Promise<QueueThroughput[]> {
    const { currentMinute, buckets } = await readThroughput(this.db, null, minutes);
    return throughputSeries(currentMinute, minutes, buckets);
  }

  /** One queue's throughput over the last `minutes` minutes (zeros when nothing was counted). */
  async queueThroughput(queue: string, minutes: number): Promise<QueueThroughput> {
    const { currentMinute, buckets } = await readThroughput(this.db, queue, minutes);
    return throughputSeries(currentMinute, minutes, buckets, queue)[0]!;
  }

  async pause(queue: string): Promise<QueueSummary> {
    await pauseQueue(this.db, queue);
    return queueSummary(this.db, queue);
  }

  async resume(queue: string): Promise<QueueSummary> {
    if (await resumeQueue(this.db, queue)) this.options.onAvailable([queue]);
    return queueSummary(this.db, queue);
  }

  /** Removes the live job, or else purges its failures; 404 when there was neither. */
  async cancel(queue: string, id: string): Promise<void> {
    const { cancelled, purged } = await cancelJob(this.db, queue, id);
    if (cancelled + purged === 0) throw new JobNotFoundError(queue, id, false);
    if (cancelled > 0) this.options.events?.cancelled(queue);
  }

  async retry(queue: string, id: string): Promise<JobDetails> {
    const { found, job } = await retryFailedJob(this.db, queue, id);
    if (!found) throw new FailedJobNotFoundError(queue, id);
    if (!job) throw new JobExistsError(queue, id);
    this.options.onAvailable([queue]);
    return job;
  }

  async retryFailed(queue: string, failedBefore: string | undefined): Promise<RetryFailedResult> {
    const before = failedBefore === undefined ? null : parseRfc3339(failedBefore, '/query/failed_before');
    const total = { retried: 0, skipped: 0 };
    let after = '0';
    for (;;) {
      const { scanned, retried, last } = await retryFailedBatch(this.db, queue, before, after, BATCH);
      total.retried += retried;
      total.skipped += scanned - retried;
      if (retried > 0) this.options.onAvailable([queue]);
      if (scanned < BATCH || last === null) return total;
      after = last;
    }
  }

  async purgeFailed(queue: string, failedBefore: string | undefined): Promise<PurgeFailedResult> {
    const before = failedBefore === undefined ? null : parseRfc3339(failedBefore, '/query/failed_before');
    return { purged: await inBatches((n) => purgeFailedBatch(this.db, queue, before, n), BATCH) };
  }

  /**
   * The reaper's share: folds count deltas, purges failed jobs past the retention and deletes
   * throughput buckets past the kept hour.
   */
  async maintain(maxBatches = 100): Promise<{ deltasFolded: number; failedPurged: number; throughputPruned: number }> {
    const deltasFolded = await inBatches((n) => foldCountDeltas(this.db, n), BATCH * 10, maxBatches);
    await pruneEmptyCounts(this.db, BATCH);
    const retention = this.options.failedRetentionSeconds;
    const failedPurged = retention > 0 ? await inBatches((n) => purgeRetainedBatch(this.db, retention, n), BATCH, maxBatches) : 0;
    const throughputPruned = await inBatches((n) => pruneThroughputBatch(this.db, THROUGHPUT_KEPT_MINUTES, n), BATCH, maxBatches);
    return { deltasFolded, failedPurged, throughputPruned };
  }
}
