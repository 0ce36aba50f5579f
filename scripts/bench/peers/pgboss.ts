/**
 * pg-boss as its users run it, in a database of its own on the same PostgreSQL: producers
 * through `send` and `insert`, consumers through `work`. Each phase gets a fresh PgBoss
 * instance, so that the options of one phase (batch size, loops, pool) do not leak into the
 * next; start() with an existing schema only checks its version.
 *
 * Settings, each pg-boss's fastest realistic one for the shape measured:
 * - processing, complete each: `work` with batchSize 1 (a handler call and one completion
 *   statement per job) and `localConcurrency` loops; `burstWhenReadyExceeds: 1`, with the
 *   monitor, supervisor and queue cache at their shortest interval (1 s), so that a loop
 *   fetches again at once while jobs wait instead of sleeping out its polling interval after
 *   each job (burstWhenBatchFull does nothing at batchSize 1). The clock starts once the
 *   monitor has counted the backlog and the queue cache has read it, as in an instance that
 *   has been running for a while.
 * - processing, batched: `work` with batchSize 50 (the baseline's claim) and
 *   `burstWhenBatchFull`: one completion statement per fetched batch.
 * - latency: the queue created with `notify: true` and the instance with `useListenNotify`, so
 *   that a send wakes the workers through LISTEN/NOTIFY; polling at its minimum (0.5 s) as the
 *   backstop; 2 loops fetching up to 4 jobs (8 in flight, as relay's worker and
 *   graphile-worker run). A wake-up fetches one batch, so loops of batchSize 1 fell behind at
 *   200 jobs/s (every send wakes every loop, each runs a fetch; a backlog drains one job per
 *   wake-up), and one loop of 8 had a longer tail.
 * - the pool: `max` = loops + 2 (each loop holds a connection while it fetches or completes),
 *   at least pg-boss's default of 10.
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { ensureDatabase } from '../db.js';
import { JobTally, pace, sleep, type LatencyRun, type ProcessRun, type TimedRun } from '../phases.js';
import { waitFor, within } from './wait.js';

export const PGBOSS_APPLICATION_NAME = 'relay-bench-pgboss';
const SCHEMA = 'pgboss';
/** pg-boss's lowest polling interval (its configuration asserts >= 0.5 s). */
const MIN_POLL_SECONDS = 0.5;

export interface PgBossProcessOptions {
  /** `localConcurrency`: worker loops, each with a fetch of `batchSize` in flight. */
  loops: number;
  batchSize: number;
}

export class PgBossPeer {
  /** The connection the bench empties and counts the tables with. */
  private ctl!: pg.Client;

  constructor(readonly url: string) {}

  async open(): Promise<void> {
    await ensureDatabase(this.url);
    // Creates (or checks) pg-boss's schema once, before any phase.
    const boss = this.boss({});
    await boss.start();
    await boss.stop({ graceful: false });
    this.ctl = new pg.Client({ connectionString: this.url, application_name: `${PGBOSS_APPLICATION_NAME}-control` });
    await this.ctl.connect();
  }

  async close(): Promise<void> {
    await this.ctl?.end();
  }

  private boss(options: { max?: number; listen?: boolean }): PgBoss {
    const boss = new PgBoss({
      connectionString: this.url,
      schema: SCHEMA,
      application_name: PGBOSS_APPLICATION_NAME,
      max: Math.max(10, options.max ?? 10),
      useListenNotify: options.listen ?? false,
      // Cron is not measured; the queue cache feeds burstWhenReadyExceeds.
      schedule: false,
      queueCacheIntervalSeconds: 1,
      monitorIntervalSeconds: 1,
      superviseIntervalSeconds: 1,
    });
    boss.on('error', (err) => process.stderr.write(`pg-boss error: ${String(err)}\n`));
    return boss;
  }

  private async withBoss<T>(options: { max?: number; listen?: boolean }, queue: string, body: (boss: PgBoss) => Promise<T>): Promise<T> {
    const boss = this.boss(options);
    await boss.start();
    try {
      if (!(await boss.getQueue(queue))) await boss.createQueue(queue, { notify: true });
      return await body(boss);
    } finally {
      await boss.stop({ graceful: false, close: true });
    }
  }

  /** Empties pg-boss's job table (every queue) and its cached counts. */
  async truncate(): Promise<void> {
    await this.ctl.query(`TRUNCATE ${SCHEMA}.job`);
  }

  /** Jobs of the queue not completed (waiting, active, failed, ...), and all of them. */
  async count(queue: string): Promise<{ open: number; all: number }> {
    const { rows } = await this.ctl.query<{ open: number; all: number }>(
      `SELECT (count(*) FILTER (WHERE state <> 'completed'))::int AS open, count(*)::int AS all FROM ${SCHEMA}.job WHERE name = $1`,
      [queue],
    );
    return rows[0]!;
  }

  /** n waiting jobs with data {i}, inserted 1 000 at a time (before a processing phase, unmeasured). */
  async preload(queue: string, n: number): Promise<void> {
    await this.withBoss({}, queue, async (boss) => {
      for (let from = 0; from < n; from += 1000) {
        await boss.insert(queue, Array.from({ length: Math.min(1000, n - from) }, (_, k) => ({ data: { i: from + k } })));
      }
    });
    await this.ctl.query(`ANALYZE ${SCHEMA}.job`);
  }

  /** n jobs, one `send` each, from `producers` concurrent loops sharing one instance. */
  async enqueueSingle(queue: string, n: number, producers: number): Promise<TimedRun> {
    return this.withBoss({ max: producers + 2 }, queue, async (boss) => {
      let next = 0;
      const start = performance.now();
      await Promise.all(
        Array.from({ length: producers }, async () => {
          for (let i = next++; i < n; i = next++) {
            const id = await boss.send(queue, { i });
            if (!id) throw new Error(`pg-boss send of ${i} stored nothing`);
          }
        }),
      );
      return { jobs: n, seconds: (performance.now() - start) / 1000 };
    });
  }

  /** n jobs in `insert` calls of `batch` jobs, one after the other. */
  async enqueueBatch(queue: string, n: number, batch: number): Promise<TimedRun> {
    return this.withBoss({}, queue, async (boss) => {
      const start = performance.now();
      for (let from = 0; from < n; from += batch) {
        const jobs = Array.from({ length: Math.min(batch, n - from) }, (_, k) => ({ data: { i: from + k } }));
        await boss.insert(queue, jobs);
      }
      return { jobs: n, seconds: (performance.now() - start) / 1000 };
    });
  }

  /** The n preloaded jobs through `work`; timed from work() until the n-th job's batch has been completed. */
  async process(queue: string, n: number, options: PgBossProcessOptions): Promise<ProcessRun> {
    return this.withBoss({ max: options.loops + 2 }, queue, async (boss) => {
      const tally = new JobTally(n);
      let completed = 0;
      let resolveDone!: () => void;
      const done = new Promise<void>((resolve) => (resolveDone = resolve));
      if (options.batchSize === 1) {
        // As in a long-running instance: the monitor has counted the backlog and the worker's
        // queue cache has read it, so that burstWhenReadyExceeds applies from the first job.
        await waitFor(async () => ((await boss.getQueue(queue))?.readyCount ?? 0) > 0, 10_000, 50);
        await sleep(1_100);
      }
      // pg-boss completes a batch after its handler returns: the clock stops when the table
      // shows every job completed (polled below once the last handler has returned).
      const start = performance.now();
      await boss.work<{ i: number }>(
        queue,
        {
          batchSize: options.batchSize,
          localConcurrency: options.loops,
          pollingIntervalSeconds: MIN_POLL_SECONDS,
          ...(options.batchSize > 1 ? { burstWhenBatchFull: true } : { burstWhenReadyExceeds: 1 }),
        },
        async (jobs) => {
          for (const job of jobs) tally.processed(job.data.i);
          completed += jobs.length;
          if (completed >= n) resolveDone();
        },
      );
      await within(done, Math.max(60_000, n * 5), `pg-boss processing ${n} jobs`);
      // The last handler has returned; its completion statement follows it.
      await waitFor(async () => (await this.count(queue)).open === 0, 10_000);
      const seconds = (performance.now() - start) / 1000;
      return { jobs: n, seconds, tally };
    });
  }

  /**
   * Jobs sent one `send` each at `rate` per second for `seconds`, processed by `work` woken by
   * LISTEN/NOTIFY. Latency: from just before `send` to the handler's start.
   */
  async latency(queue: string, rate: number, seconds: number, { loops, batchSize }: PgBossProcessOptions): Promise<LatencyRun> {
    const n = Math.round(rate * seconds);
    return this.withBoss({ max: loops + 4, listen: true }, queue, async (boss) => {
      const tally = new JobTally(n);
      const samples: number[] = [];
      let resolveDone!: () => void;
      const done = new Promise<void>((resolve) => (resolveDone = resolve));
      await boss.work<{ i: number; t: number }>(
        queue,
        {
          batchSize,
          localConcurrency: loops,
          pollingIntervalSeconds: MIN_POLL_SECONDS,
          notifyPollingIntervalSeconds: MIN_POLL_SECONDS,
          // A wake-up fetches one batch: a backlog (a burst of sends) would otherwise drain only
          // one batch per notification or poll.
          ...(batchSize > 1 ? { burstWhenBatchFull: true } : { burstWhenReadyExceeds: 1 }),
        },
        async (jobs) => {
          const now = performance.now();
          for (const job of jobs) {
            samples.push(now - job.data.t);
            tally.processed(job.data.i);
          }
          if (tally.count >= n) resolveDone();
        },
      );
      // Let the workers' first fetches find the queue empty.
      await sleep(600);
      const start = performance.now();
      const sends: Promise<unknown>[] = [];
      await pace(n, rate, (i) => {
        sends.push(boss.send(queue, { i, t: performance.now() }));
      });
      await Promise.all(sends);
      await within(done, 10_000, `pg-boss's processing of the last of ${n} jobs`);
      await waitFor(async () => (await this.count(queue)).open === 0, 10_000);
      return { jobs: n, seconds: (performance.now() - start) / 1000, tally, samples };
    });
  }
}
