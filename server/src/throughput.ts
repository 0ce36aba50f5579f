import type { Logger } from 'pino';
import type { Queryable } from './db/index.js';
import type { JobEvents, RetryCause } from './job-events.js';
import type { QueueThroughput, ThroughputMinute } from './jobs.js';
import { addThroughput, type ThroughputCounts } from './sql/add-throughput.js';
import type { ThroughputBucket } from './sql/throughput.js';

/**
 * Throughput per queue and minute, correct across several servers on one database: each server
 * counts in memory the outcomes it saw (the same JobEvents the metrics count, so it works
 * without metrics too) and adds them to per-minute buckets in the database every few seconds,
 * in one statement. No statement of the request path is added; a crash loses what was counted
 * since the last flush.
 *
 * Counted: jobs enqueued, completed, and failed for good (their retries used up). Retries and
 * reschedules are not: the job stays in its queue, and counting it each time would count one
 * job's passage several times (they stay in each server's /metrics).
 */

/** Minutes of buckets the reaper keeps before the current one; the API serves up to this many. */
export const THROUGHPUT_KEPT_MINUTES = 60;

const MINUTE_MS = 60_000;

interface Counts {
  enqueued: number;
  completed: number;
  failed: number;
}

export interface ThroughputRecorderOptions {
  /** Seconds between flushes. */
  flushSeconds: number;
  logger: Logger;
  /** The clock that places an outcome in its minute, ms since the epoch. */
  now?: () => number;
}

const ignore = () => undefined;

export class ThroughputRecorder implements JobEvents {
  /** Counted and not flushed yet: queue -> minute (ms since the epoch) -> counts. */
  #pending = new Map<string, Map<number, Counts>>();
  #flushing: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  readonly #now: () => number;

  constructor(
    private readonly db: Queryable,
    private readonly options: ThroughputRecorderOptions,
  ) {
    this.#now = options.now ?? Date.now;
  }

  /** Flushes every flushSeconds until close(). */
  start(): void {
    let busy = false;
    this.#timer = setInterval(() => {
      // A slow database: skip a tick rather than queue flushes behind each other.
      if (busy) return;
      busy = true;
      void this.flush().finally(() => (busy = false));
    }, this.options.flushSeconds * 1000);
    this.#timer.unref();
  }

  /**
   * Adds what was counted before this call to the database. Never rejects: on failure the counts
   * are kept for the next flush (those past the kept hour are dropped) and a warning is logged.
   */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(() => this.#flushOnce());
    return this.#flushing;
  }

  /** Stops the interval and flushes what is left (graceful shutdown). */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }

  async #flushOnce(): Promise<void> {
    if (this.#pending.size === 0) return;
    const taken = this.#pending;
    this.#pending = new Map();
    const rows: ThroughputCounts[] = [];
    for (const [queue, minutes] of taken) {
      for (const [minute, c] of minutes) rows.push({ queue, minute: new Date(minute).toISOString(), ...c });
    }
    try {
      await addThroughput(this.db, rows);
    } catch (err) {
      this.options.logger.warn({ err: (err as Error).message, buckets: rows.length }, 'throughput: adding the counts failed; kept for the next flush');
      this.#putBack(taken);
    }
  }

  #putBack(taken: Map<string, Map<number, Counts>>): void {
    const oldest = this.#minuteOf(this.#now()) - THROUGHPUT_KEPT_MINUTES * MINUTE_MS;
    for (const [queue, minutes] of taken) {
      for (const [minute, c] of minutes) {
        if (minute < oldest) continue;
        const counts = this.#counts(queue, minute);
        counts.enqueued += c.enqueued;
        counts.completed += c.completed;
        counts.failed += c.failed;
      }
    }
  }

  #minuteOf(ms: number): number {
    return Math.floor(ms / MINUTE_MS) * MINUTE_MS;
  }

  #counts(queue: string, minute: number): Counts {
    let minutes = this.#pending.get(queue);
    if (!minutes) this.#pending.set(queue, (minutes = new Map()));
    let counts = minutes.get(minute);
    if (!counts) minutes.set(minute, (counts = { enqueued: 0, completed: 0, failed: 0 }));
    return counts;
  }

  #countsNow(queue: string): Counts {
    return this.#counts(queue, this.#minuteOf(this.#now()));
  }

  // JobEvents

  enqueued(queue: string, count: number): void {
    this.#countsNow(queue).enqueued += count;
  }

  completed(queue: string): void {
    this.#countsNow(queue).completed += 1;
  }

  failed(queue: string, _cause: RetryCause, count: number): void {
    this.#countsNow(queue).failed += count;
  }

  delivered = ignore;
  retried = ignore;
  rescheduled = ignore;
  cancelled = ignore;
}

/**
 * The buckets of the last `minutes` minutes up to currentMinute as one dense series per queue
 * (a minute without a bucket counted nothing), with totals, queues by name; `queue`, when
 * given, has its series even when nothing was counted.
 */
export function throughputSeries(currentMinute: string, minutes: number, buckets: readonly ThroughputBucket[], queue?: string): QueueThroughput[] {
  const last = Date.parse(currentMinute);
  const starts = Array.from({ length: minutes }, (_, i) => new Date(last - (minutes - 1 - i) * MINUTE_MS).toISOString());
  const byQueue = new Map<string, Map<string, ThroughputBucket>>();
  if (queue !== undefined) byQueue.set(queue, new Map());
  for (const b of buckets) {
    let found = byQueue.get(b.queue);
    if (!found) byQueue.set(b.queue, (found = new Map()));
    found.set(b.minute, b);
  }
  return [...byQueue].map(([name, found]) => series(name, starts, found));
}

function series(queue: string, starts: readonly string[], found: ReadonlyMap<string, ThroughputBucket>): QueueThroughput {
  const per_minute: ThroughputMinute[] = starts.map((minute) => {
    const b = found.get(minute);
    return { minute, enqueued: b?.enqueued ?? 0, completed: b?.completed ?? 0, failed: b?.failed ?? 0 };
  });
  const total = (k: keyof Counts) => per_minute.reduce((n, m) => n + m[k], 0);
  return { queue, enqueued: total('enqueued'), completed: total('completed'), failed: total('failed'), per_minute };
}
