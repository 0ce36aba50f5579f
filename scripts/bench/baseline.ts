/**
 * The baseline: the same job lifecycle on the same tables, straight through `pg`, with no
 * HTTP and no server in between, written as one would by hand: INSERT to enqueue, the claim
 * CTE of the server's `next` (taken verbatim from server/src/sql/next.ts), DELETE to complete
 * (with the run_id fence), and for batches INSERT ... SELECT FROM unnest and DELETE ... = ANY.
 * Only the latency phase notifies (LISTEN/NOTIFY wakes its consumer). The limit relay-ts is
 * measured against.
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { storeStatement, type StoreStatement } from './db.js';
import type { LatencyRun, ProcessRun, TimedRun } from './phases.js';
import { JobTally, pace, sleep } from './phases.js';

export const APPLICATION_NAME = 'relay-bench-baseline';

interface Row {
  id: string;
  queue: string;
  payload: { i?: number; t?: number };
  run_id: string;
}

export class Baseline {
  readonly pool: pg.Pool;
  private readonly next: StoreStatement;
  private readonly heartbeat: StoreStatement;

  constructor(url: string, connections = 8) {
    this.pool = new pg.Pool({ connectionString: url, max: connections + 2, application_name: APPLICATION_NAME });
    this.pool.on('error', () => undefined); // an idle connection lost: the next query fails loudly anyway
    // $1 queue, $2 how many
    this.next = storeStatement('NEXT', 2);
    // $1 queue, $2 id, $3 replace state?, $4 state (JSON text), $5 run_id
    this.heartbeat = storeStatement('HEARTBEAT', 5);
  }

  /** The SQL the baseline runs, for the report. */
  statements(): Record<string, string> {
    return {
      enqueue: ENQUEUE.text,
      enqueueNotify: ENQUEUE_NOTIFY.text,
      enqueueBatch: ENQUEUE_BATCH.text,
      next: this.next.text,
      heartbeat: this.heartbeat.text,
      complete: COMPLETE.text,
      completeBatch: COMPLETE_BATCH.text,
    };
  }

  /** n connections checked out at once, so that a phase does not time connection set-up. */
  private async clients(n: number): Promise<pg.PoolClient[]> {
    return Promise.all(Array.from({ length: n }, () => this.pool.connect()));
  }

  private release(clients: pg.PoolClient[]): void {
    for (const c of clients) c.release();
  }

  private insertOne(c: pg.ClientBase | pg.Pool, queue: string, id: number, payload: unknown, notify = false) {
    return c.query({ ...(notify ? ENQUEUE_NOTIFY : ENQUEUE), values: [queue, String(id), 60, JSON.stringify(payload)] });
  }

  /** n jobs, one INSERT each, from `producers` concurrent connections. */
  async enqueueSingle(queue: string, n: number, producers: number): Promise<TimedRun> {
    const clients = await this.clients(producers);
    try {
      let next = 0;
      const start = performance.now();
      await Promise.all(
        clients.map(async (c) => {
          for (let id = next++; id < n; id = next++) {
            const { rowCount } = await this.insertOne(c, queue, id, { i: id });
            if (rowCount !== 1) throw new Error(`baseline enqueue of ${id} stored nothing`);
          }
        }),
      );
      return { jobs: n, seconds: (performance.now() - start) / 1000 };
    } finally {
      this.release(clients);
    }
  }

  /** n jobs in statements of `batch` jobs, one after the other. */
  async enqueueBatch(queue: string, n: number, batch: number): Promise<TimedRun> {
    const [c] = await this.clients(1);
    try {
      const start = performance.now();
      for (let from = 0; from < n; from += batch) {
        const ids: string[] = [];
        const payloads: string[] = [];
        for (let i = from; i < Math.min(n, from + batch); i++) {
          ids.push(String(i));
          payloads.push(JSON.stringify({ i }));
        }
        const { rows } = await c!.query<{ stored: number }>({ ...ENQUEUE_BATCH, values: [queue, 60, ids, payloads] });
        if (rows[0]!.stored !== ids.length) throw new Error(`baseline batch stored ${rows[0]!.stored} of ${ids.length}`);
      }
      return { jobs: n, seconds: (performance.now() - start) / 1000 };
    } finally {
      this.release([c!]);
    }
  }

  /**
   * The n jobs preloaded in queue, by `consumers` connections each claiming `claim` jobs per
   * statement and completing them one DELETE each, or one DELETE per claimed batch. With
   * `heartbeat`, each job first checkpoints a small state with the server's heartbeat UPDATE.
   */
  async process(queue: string, n: number, options: { consumers: number; claim: number; batched: boolean; heartbeat?: boolean }): Promise<ProcessRun> {
    const clients = await this.clients(options.consumers);
    const tally = new JobTally(n);
    try {
      const start = performance.now();
      await Promise.all(
        clients.map(async (c) => {
          for (;;) {
            const { rows } = await c.query<Row>({ ...this.next, values: [queue, options.claim] });
            if (rows.length === 0) return; // SKIP LOCKED: the rest is being claimed by the others
            for (const r of rows) tally.processed(r.id);
            if (options.heartbeat) {
              for (const r of rows) {
                const { rowCount } = await c.query({ ...this.heartbeat, values: [queue, r.id, true, JSON.stringify({ step: 1 }), r.run_id] });
                if (rowCount !== 1) throw new Error(`baseline heartbeat of ${r.id} updated nothing`);
              }
            }
            if (options.batched) {
              const { rowCount } = await c.query({ ...COMPLETE_BATCH, values: [queue, rows.map((r) => r.id)] });
              if (rowCount !== rows.length) throw new Error(`baseline batch complete removed ${rowCount} of ${rows.length}`);
            } else {
              for (const r of rows) {
                const { rowCount } = await c.query({ ...COMPLETE, values: [queue, r.id, r.run_id] });
                if (rowCount !== 1) throw new Error(`baseline complete of ${r.id} removed nothing`);
              }
            }
          }
        }),
      );
      return { jobs: n, seconds: (performance.now() - start) / 1000, tally };
    } finally {
      this.release(clients);
    }
  }

  /**
   * Jobs enqueued at `rate` per second for `seconds`, consumed by one consumer woken by
   * LISTEN/NOTIFY (and a re-check every second), claiming up to 50 and completing them in one
   * DELETE. Latency: from just before the INSERT is sent to the consumer having the job.
   */
  async latency(queue: string, rate: number, seconds: number): Promise<LatencyRun> {
    const n = Math.round(rate * seconds);
    const tally = new JobTally(n);
    const samples: number[] = [];
    // The producer sends each INSERT on whichever pool connection is free: one connection
    // alone could not keep up with the rate when each commit waits for its WAL flush.
    const [consumer, listener] = await this.clients(2);
    let running = false;
    let again = false;
    let failure: unknown;
    let resolveDone!: () => void;
    const done = new Promise<void>((resolve) => (resolveDone = resolve));
    const drain = async () => {
      if (running) {
        again = true;
        return;
      }
      running = true;
      try {
        for (;;) {
          again = false;
          const { rows } = await consumer!.query<Row>({ ...this.next, values: [queue, 50] });
          const now = performance.now();
          for (const r of rows) {
            samples.push(now - r.payload.t!);
            tally.processed(r.id);
          }
          if (rows.length > 0) await consumer!.query({ ...COMPLETE_BATCH, values: [queue, rows.map((r) => r.id)] });
          if (tally.count >= n) resolveDone();
          if (rows.length === 0 && !again) break;
        }
      } catch (err) {
        failure ??= err;
        resolveDone();
      } finally {
        running = false;
      }
    };
    const onNotification = (msg: pg.Notification) => {
      if (msg.payload === queue) void drain();
    };
    listener!.on('notification', onNotification);
    await listener!.query(`LISTEN ${pg.escapeIdentifier(CHANNEL)}`);
    const recheck = setInterval(() => void drain(), 1000);
    try {
      const start = performance.now();
      const inserts: Promise<unknown>[] = [];
      await pace(n, rate, (id) => {
        inserts.push(this.insertOne(this.pool, queue, id, { t: performance.now() }, true));
      });
      await Promise.all(inserts);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          failure ??= new Error(`baseline latency: ${tally.count} of ${n} jobs consumed 10 s after the last enqueue`);
          resolve();
        }, 10_000);
      });
      await Promise.race([done, timeout]);
      clearTimeout(timer);
      if (failure) throw failure;
      return { jobs: n, seconds: (performance.now() - start) / 1000, tally, samples };
    } finally {
      clearInterval(recheck);
      await listener!.query(`UNLISTEN ${pg.escapeIdentifier(CHANNEL)}`);
      listener!.off('notification', onNotification);
      while (running) await sleep(5);
      this.release([consumer!, listener!]);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** Its own channel, so that the relay server (listening on its own) is not woken by the baseline. */
const CHANNEL = 'relay_bench_baseline';

const ENQUEUE = {
  name: 'bench_enqueue',
  // $1 queue, $2 id, $3 timeout, $4 payload (JSON text).
  text: `INSERT INTO relay_jobs (queue, id, timeout, payload) VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT DO NOTHING`,
};

const ENQUEUE_NOTIFY = {
  name: 'bench_enqueue_notify',
  // The same, and a notification naming the queue when the job was stored.
  text: `WITH stored AS (
           INSERT INTO relay_jobs (queue, id, timeout, payload) VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT DO NOTHING
           RETURNING queue
         )
         SELECT pg_notify('${CHANNEL}', queue) FROM stored`,
};

const COMPLETE = {
  name: 'bench_complete',
  // $1 queue, $2 id, $3 run_id: the delivery must still hold the job.
  text: `DELETE FROM relay_jobs WHERE queue = $1 AND id = $2 AND run_id = $3::bigint`,
};

const ENQUEUE_BATCH = {
  name: 'bench_enqueue_batch',
  // $1 queue, $2 timeout, $3 ids, $4 payloads (JSON text).
  text: `WITH stored AS (
           INSERT INTO relay_jobs (queue, id, timeout, payload)
           SELECT $1, t.id, $2, t.payload::jsonb FROM unnest($3::text[], $4::text[]) AS t(id, payload)
           ON CONFLICT DO NOTHING
           RETURNING 1
         )
         SELECT count(*)::int AS stored FROM stored`,
};

const COMPLETE_BATCH = {
  name: 'bench_complete_batch',
  // $1 queue, $2 ids.
  text: `DELETE FROM relay_jobs WHERE queue = $1 AND id = ANY($2::text[])`,
};
