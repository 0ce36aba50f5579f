/**
 * graphile-worker as its users run it, in a database of its own on the same PostgreSQL:
 * producers through WorkerUtils (`addJob`, `addJobs`) on one shared pool, consumers through
 * `run` with a task list. Each phase starts its own runner with the phase's options.
 *
 * Settings, each graphile-worker's fastest realistic one for the shape measured (its
 * performance guide's knobs):
 * - processing, complete each: `concurrentJobs` = the concurrency, `localQueue.size` = the
 *   concurrency (jobs fetched and locked in batches and handed out locally, as relay's worker
 *   prefetches one job per slot), `completeJobBatchDelay` -1 (its default: one completion
 *   statement per job).
 * - processing, batched: the same with `completeJobBatchDelay` = the relay worker's completion
 *   window (completions within it share one statement).
 * - latency: LISTEN/NOTIFY (always on), `concurrentJobs` 8 like relay's worker, no local queue
 *   and no completion batching (both trade latency for throughput); pollInterval at its
 *   default (2 s), only a backstop behind the notifications.
 * - the pool: `maxPoolSize` = concurrentJobs + 2, at least 10 (its documented recommendation).
 */
import { performance } from 'node:perf_hooks';
import { Logger, makeWorkerUtils, run, type Job, type Runner, type WorkerUtils } from 'graphile-worker';
import pg from 'pg';
import { ensureDatabase } from '../db.js';
import { JobTally, pace, sleep, type LatencyRun, type ProcessRun, type TimedRun } from '../phases.js';
import { waitFor, within } from './wait.js';

export const GRAPHILE_APPLICATION_NAME = 'relay-bench-graphile';
const SCHEMA = 'graphile_worker';
const TASK = 'bench';

/** Warnings and errors only: its info lines (a line per runner start and stop) would drown the bench's log. */
const logger = new Logger(() => (level, message) => {
  if (level === 'error' || level === 'warning') process.stderr.write(`graphile-worker ${level}: ${message}\n`);
});

export interface GraphileProcessOptions {
  concurrency: number;
  /** completeJobBatchDelay in ms; -1: each job completed on its own. */
  completeJobBatchDelay: number;
  /** localQueue.size; -1: none (each worker fetches its own job). */
  localQueueSize: number;
}

interface Payload {
  i: number;
  t?: number;
}

export class GraphilePeer {
  private ctl!: pg.Client;

  constructor(readonly url: string) {}

  /** Creates the database when missing and graphile-worker's schema (its migrations) once. */
  async open(): Promise<void> {
    await ensureDatabase(this.url);
    const utils = await this.utils(2);
    await utils.migrate();
    await utils.release();
    this.ctl = new pg.Client({ connectionString: this.url, application_name: `${GRAPHILE_APPLICATION_NAME}-control` });
    await this.ctl.connect();
  }

  async close(): Promise<void> {
    await this.ctl?.end();
  }

  private utils(maxPoolSize: number): Promise<WorkerUtils> {
    return makeWorkerUtils({ connectionString: this.connectionString(), schema: SCHEMA, maxPoolSize, logger });
  }

  private connectionString(): string {
    const u = new URL(this.url);
    u.searchParams.set('application_name', GRAPHILE_APPLICATION_NAME);
    return u.toString();
  }

  async truncate(): Promise<void> {
    await this.ctl.query(`TRUNCATE ${SCHEMA}._private_jobs CASCADE`);
  }

  /** Jobs still stored (graphile-worker deletes a job when it completes). */
  async count(): Promise<number> {
    const { rows } = await this.ctl.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${SCHEMA}._private_jobs`);
    return rows[0]!.n;
  }

  /** n waiting jobs with payload {i}, added 1 000 at a time (before a processing phase, unmeasured). */
  async preload(n: number): Promise<void> {
    const utils = await this.utils(2);
    try {
      for (let from = 0; from < n; from += 1000) {
        await utils.addJobs(Array.from({ length: Math.min(1000, n - from) }, (_, k) => ({ identifier: TASK, payload: { i: from + k } })));
      }
    } finally {
      await utils.release();
    }
    await this.ctl.query(`ANALYZE ${SCHEMA}._private_jobs`);
  }

  /** n jobs, one `addJob` each, from `producers` concurrent loops on one WorkerUtils pool. */
  async enqueueSingle(n: number, producers: number): Promise<TimedRun> {
    const utils = await this.utils(Math.max(10, producers + 2));
    try {
      // Connect the pool before the clock starts, as the other systems' phases do.
      await Promise.all(Array.from({ length: producers }, () => utils.withPgClient(() => sleep(1))));
      let next = 0;
      const start = performance.now();
      await Promise.all(
        Array.from({ length: producers }, async () => {
          for (let i = next++; i < n; i = next++) await utils.addJob(TASK, { i });
        }),
      );
      return { jobs: n, seconds: (performance.now() - start) / 1000 };
    } finally {
      await utils.release();
    }
  }

  /** n jobs in `addJobs` calls of `batch` jobs, one after the other. */
  async enqueueBatch(n: number, batch: number): Promise<TimedRun> {
    const utils = await this.utils(2);
    try {
      await utils.withPgClient(() => sleep(1));
      const start = performance.now();
      for (let from = 0; from < n; from += batch) {
        const added = await utils.addJobs(Array.from({ length: Math.min(batch, n - from) }, (_, k) => ({ identifier: TASK, payload: { i: from + k } })));
        if (added.length !== Math.min(batch, n - from)) throw new Error(`graphile-worker addJobs stored ${added.length} of ${Math.min(batch, n - from)}`);
      }
      return { jobs: n, seconds: (performance.now() - start) / 1000 };
    } finally {
      await utils.release();
    }
  }

  /**
   * A runner with `concurrency` workers whose task only records the job. `done` settles when
   * `n` jobs are complete (the `job:complete` event: the completion has been sent, its write may
   * still be pending), and fails on a job error.
   */
  private async runner(n: number, o: GraphileProcessOptions, onJob: (payload: Payload) => void = () => undefined) {
    const tally = new JobTally(n);
    let completed = 0;
    let resolveDone!: () => void;
    let rejectDone!: (err: Error) => void;
    const done = new Promise<void>((resolve, reject) => {
      resolveDone = resolve;
      rejectDone = reject;
    });
    done.catch(() => undefined);
    const runner: Runner = await run({
      connectionString: this.connectionString(),
      schema: SCHEMA,
      concurrency: o.concurrency,
      maxPoolSize: Math.max(10, o.concurrency + 2),
      noHandleSignals: true,
      logger,
      taskList: {
        [TASK]: async (payload) => {
          const p = payload as Payload;
          onJob(p);
          tally.processed(p.i);
        },
      },
      preset: { worker: { localQueue: { size: o.localQueueSize }, completeJobBatchDelay: o.completeJobBatchDelay } },
    });
    runner.events.on('job:complete', ({ error }) => {
      if (error) rejectDone(new Error(`graphile-worker job failed: ${String(error)}`));
      else if (++completed >= n) resolveDone();
    });
    runner.events.on('job:error', ({ error }) => rejectDone(new Error(`graphile-worker job error: ${String(error)}`)));
    return { runner, tally, done };
  }

  /** The n preloaded jobs; timed from run() until the n-th completion is written (no job left). */
  async process(n: number, o: GraphileProcessOptions): Promise<ProcessRun> {
    const start = performance.now();
    const { runner, tally, done } = await this.runner(n, o);
    try {
      await within(done, Math.max(60_000, n * 5), `graphile-worker processing ${n} jobs`);
      // The event comes when the completion is sent, not when it is written: the clock stops
      // when the last job is deleted.
      await waitFor(async () => (await this.count()) === 0, 10_000);
      const seconds = (performance.now() - start) / 1000;
      return { jobs: n, seconds, tally };
    } finally {
      await runner.stop();
    }
  }

  /**
   * Jobs added one `addJob` each at `rate` per second for `seconds`, run by a runner woken by
   * LISTEN/NOTIFY. Latency: from just before `addJob` to the task's start.
   */
  async latency(rate: number, seconds: number, concurrency = 8): Promise<LatencyRun> {
    const n = Math.round(rate * seconds);
    const samples: number[] = [];
    const utils = await this.utils(10);
    const { runner, tally, done } = await this.runner(n, { concurrency, completeJobBatchDelay: -1, localQueueSize: -1 }, (p) => samples.push(performance.now() - p.t!));
    try {
      await utils.withPgClient(() => sleep(1));
      // Let the runner's first fetches find the queue empty and its LISTEN be in place.
      await sleep(500);
      const start = performance.now();
      const adds: Promise<Job>[] = [];
      await pace(n, rate, (i) => {
        adds.push(utils.addJob(TASK, { i, t: performance.now() }));
      });
      await Promise.all(adds);
      await within(done, 10_000, `graphile-worker's processing of the last of ${n} jobs`);
      await waitFor(async () => (await this.count()) === 0, 10_000);
      return { jobs: n, seconds: (performance.now() - start) / 1000, tally, samples };
    } finally {
      await runner.stop();
      await utils.release();
    }
  }
}
