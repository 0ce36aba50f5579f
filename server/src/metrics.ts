import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { JobEvents, RetryCause } from './job-events.js';
import type { LeasedJob, QueueSummary } from './jobs.js';

/**
 * The server's Prometheus metrics (issue 13). Each server owns a Registry of its own, not
 * prom-client's global one, so that several servers in one process keep their series apart.
 *
 * - Job counters count what this server did, where the outcome is known (JobEvents): two
 *   servers on one database each count their own requests and their own reaper's expiries.
 * - Queue gauges are read from the database, all queues in one statement, on an interval that
 *   starts with the first scrape: every server of one database reports the same values, and a
 *   scrape never runs a query of its own (nor one per queue).
 * - Queue labels are capped: the first `maxQueues` queue names this server meets get a label
 *   of their own, any later one is counted under `queue="_other"`, so that a producer that
 *   invents queue names cannot grow the series without bound.
 */

/** The label of every queue past the cap. */
export const OTHER_QUEUE = '_other';

/** Seconds: from 1 ms to about 1 h, for queue latency and processing time. */
const JOB_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600];
/** Seconds: HTTP requests, long polls (up to 60 s) included. */
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Assigns queue labels, at most max distinct ones; never takes one back (a counter's series must stay). */
class QueueLabels {
  private readonly seen = new Set<string>();
  constructor(private readonly max: number) {}

  of(queue: string): string {
    if (this.seen.has(queue)) return queue;
    if (this.seen.size >= this.max) return OTHER_QUEUE;
    this.seen.add(queue);
    return queue;
  }
}

export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
}

export interface MetricsOptions {
  /** Distinct queue label values at most; later queues are reported as `_other`. */
  maxQueues: number;
  /** Seconds between reads of the queue gauges from the database. */
  refreshSeconds: number;
  /** Every queue's counts, in one statement. */
  queueSummaries: () => Promise<QueueSummary[]>;
  /** The database pool, when there is one (PostgreSQL). */
  pool?: () => PoolStats;
  /** Long polls waiting now. */
  waitingPolls: () => number;
  logger: Logger;
}

export class Metrics implements JobEvents {
  readonly registry = new Registry();
  private readonly labels: QueueLabels;
  private readonly enqueuedTotal: Counter<'queue'>;
  private readonly deliveredTotal: Counter<'queue'>;
  private readonly completedTotal: Counter<'queue'>;
  private readonly retriedTotal: Counter<'queue' | 'cause'>;
  private readonly failedTotal: Counter<'queue' | 'cause'>;
  private readonly rescheduledTotal: Counter<'queue'>;
  private readonly cancelledTotal: Counter<'queue'>;
  private readonly queueLatency: Histogram<'queue'>;
  private readonly processing: Histogram<'queue'>;
  private readonly httpDuration: Histogram<'method' | 'route' | 'status'>;
  private readonly queueJobs: Gauge<'queue' | 'status'>;
  private readonly oldestWaiting: Gauge<'queue'>;
  private readonly paused: Gauge<'queue'>;
  private readonly refreshedAt: Gauge;
  private readonly reaperLastRun: Gauge;
  private readonly reaperDuration: Gauge;
  private firstRefresh: Promise<void> | undefined;
  /** A refresh under way: the next tick skips rather than stack a second query behind a slow one. */
  private refreshing = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: MetricsOptions) {
    const registers = [this.registry];
    this.labels = new QueueLabels(options.maxQueues);
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) => new Counter<L>({ name, help, labelNames, registers });
    this.enqueuedTotal = counter('relay_jobs_enqueued_total', 'Jobs stored by enqueue requests to this server.', ['queue']);
    this.deliveredTotal = counter('relay_jobs_delivered_total', 'Jobs handed out by next on this server.', ['queue']);
    this.completedTotal = counter('relay_jobs_completed_total', 'Jobs completed through this server.', ['queue']);
    this.retriedTotal = counter('relay_jobs_retried_total', 'Jobs sent back to their queue with a retry counted, by cause: lease_expired (found by this server\'s reaper) or fail.', ['queue', 'cause']);
    this.failedTotal = counter('relay_jobs_failed_total', 'Jobs moved to the failed jobs, their retries used up, by cause: lease_expired or fail.', ['queue', 'cause']);
    this.rescheduledTotal = counter('relay_jobs_rescheduled_total', 'Jobs released by reschedule through this server.', ['queue']);
    this.cancelledTotal = counter('relay_jobs_cancelled_total', 'Live jobs removed by cancel through this server.', ['queue']);
    this.queueLatency = new Histogram({
      name: 'relay_job_queue_latency_seconds',
      help: 'From a job\'s run_at to its delivery by next (after a lease expiry, from the run_at it kept).',
      labelNames: ['queue'],
      buckets: JOB_BUCKETS,
      registers,
    });
    this.processing = new Histogram({
      name: 'relay_job_processing_seconds',
      help: 'From a job\'s delivery to its completion.',
      labelNames: ['queue'],
      buckets: JOB_BUCKETS,
      registers,
    });
    this.httpDuration = new Histogram({
      name: 'relay_http_request_duration_seconds',
      help: 'HTTP requests by method, route template of openapi.yaml and status.',
      labelNames: ['method', 'route', 'status'],
      buckets: HTTP_BUCKETS,
      registers,
    });
    this.queueJobs = new Gauge({ name: 'relay_queue_jobs', help: 'Jobs of a queue by status (waiting, scheduled, in_flight, failed), from the database.', labelNames: ['queue', 'status'], registers });
    this.oldestWaiting = new Gauge({ name: 'relay_queue_oldest_waiting_seconds', help: 'Age of the oldest waiting job of a queue (since its run_at); 0 when none waits.', labelNames: ['queue'], registers });
    this.paused = new Gauge({ name: 'relay_queue_paused', help: '1 when the queue is paused (under _other: how many of those queues are).', labelNames: ['queue'], registers });
    this.refreshedAt = new Gauge({ name: 'relay_queue_gauges_refreshed_timestamp_seconds', help: 'When the queue gauges were last read from the database.', registers });
    this.reaperLastRun = new Gauge({ name: 'relay_reaper_last_run_timestamp_seconds', help: 'When this server\'s reaper last finished a run.', registers });
    this.reaperDuration = new Gauge({ name: 'relay_reaper_last_run_duration_seconds', help: 'How long this server\'s reaper\'s last run took.', registers });
    new Gauge({
      name: 'relay_long_polls_waiting',
      help: 'next requests waiting for a job now (long polls).',
      registers,
      collect() {
        this.set(options.waitingPolls());
      },
    });
    const pool = options.pool;
    if (pool) {
      new Gauge({
        name: 'relay_db_pool_connections',
        help: 'Database pool connections by state: in_use or idle.',
        labelNames: ['state'],
        registers,
        collect() {
          const { total, idle } = pool();
          this.set({ state: 'in_use' }, total - idle);
          this.set({ state: 'idle' }, idle);
        },
      });
      new Gauge({
        name: 'relay_db_pool_waiting_requests',
        help: 'Queries waiting for a pool connection.',
        registers,
        collect() {
          this.set(pool().waiting);
        },
      });
    }
    collectDefaultMetrics({ register: this.registry });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The text a scrape gets. The first one reads the queue gauges and starts their interval. */
  async text(): Promise<string> {
    this.firstRefresh ??= this.refresh().then(() => {
      if (this.closed) return;
      this.timer = setInterval(() => {
        if (this.refreshing) return;
        this.refreshing = true;
        void this.refresh().finally(() => (this.refreshing = false));
      }, this.options.refreshSeconds * 1000);
      this.timer.unref();
    });
    await this.firstRefresh;
    return this.registry.metrics();
  }

  /** Reads every queue's counts in one statement; on failure the gauges keep their last values. */
  async refresh(): Promise<void> {
    let summaries: QueueSummary[];
    try {
      summaries = await this.options.queueSummaries();
    } catch (err) {
      this.options.logger.warn({ err: (err as Error).message }, 'metrics: reading the queue counts failed; the gauges keep their last values');
      return;
    }
    const byLabel = new Map<string, { waiting: number; scheduled: number; in_flight: number; failed: number; oldest: number; paused: number }>();
    for (const s of summaries) {
      const label = this.labels.of(s.queue);
      const g = byLabel.get(label) ?? { waiting: 0, scheduled: 0, in_flight: 0, failed: 0, oldest: 0, paused: 0 };
      g.waiting += s.waiting;
      g.scheduled += s.scheduled;
      g.in_flight += s.in_flight;
      g.failed += s.failed;
      g.oldest = Math.max(g.oldest, s.oldest_waiting_seconds ?? 0);
      g.paused += s.paused ? 1 : 0;
      byLabel.set(label, g);
    }
    // A queue that emptied leaves the list; its series go with it rather than stay stale.
    this.queueJobs.reset();
    this.oldestWaiting.reset();
    this.paused.reset();
    for (const [queue, g] of byLabel) {
      for (const status of ['waiting', 'scheduled', 'in_flight', 'failed'] as const) this.queueJobs.set({ queue, status }, g[status]);
      this.oldestWaiting.set({ queue }, g.oldest);
      this.paused.set({ queue }, g.paused);
    }
    this.refreshedAt.set(Date.now() / 1000);
  }

  /** A reaper run finished (startedAt: ms since the epoch). */
  reaperRan(startedAt: number, seconds: number): void {
    this.reaperLastRun.set((startedAt + seconds * 1000) / 1000);
    this.reaperDuration.set(seconds);
  }

  observeRequest(method: string, route: string, status: number, seconds: number): void {
    this.httpDuration.observe({ method, route, status: String(status) }, seconds);
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
  }

  // JobEvents

  enqueued(queue: string, count: number): void {
    this.enqueuedTotal.inc({ queue: this.labels.of(queue) }, count);
  }

  delivered(jobs: readonly LeasedJob[]): void {
    const now = Date.now();
    for (const job of jobs) {
      const queue = this.labels.of(job.queue);
      this.deliveredTotal.inc({ queue });
      this.queueLatency.observe({ queue }, Math.max(0, now - Date.parse(job.run_at)) / 1000);
    }
  }

  completed(queue: string, processedSeconds: number | null): void {
    const label = this.labels.of(queue);
    this.completedTotal.inc({ queue: label });
    if (processedSeconds !== null) this.processing.observe({ queue: label }, Math.max(0, processedSeconds));
  }

  retried(queue: string, cause: RetryCause, count: number): void {
    this.retriedTotal.inc({ queue: this.labels.of(queue), cause }, count);
  }

  failed(queue: string, cause: RetryCause, count: number): void {
    this.failedTotal.inc({ queue: this.labels.of(queue), cause }, count);
  }

  rescheduled(queue: string): void {
    this.rescheduledTotal.inc({ queue: this.labels.of(queue) });
  }

  cancelled(queue: string): void {
    this.cancelledTotal.inc({ queue: this.labels.of(queue) });
  }
}
