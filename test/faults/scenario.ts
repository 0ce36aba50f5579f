import type { RetryOptions } from '@relay-ts/client';
import { sql } from '../helpers/postgres.js';
import type { Cluster } from './cluster.js';
import { Ledger, type Reconciliation } from './ledger.js';
import { Producer, WorkerProcess, settled, type ProducerOptions } from './load.js';

/**
 * What every scenario shares: a queue under a steady load (producers and worker processes on
 * the cluster, each client preferring another server), and its end: the producers stop, every
 * accepted job completes or fails, the workers stop, and the ledger is reconciled.
 */

export const QUEUE = 'ledger';

/** Leases of 3 s: a job a killed worker held comes back soon. */
export const LEASE_SECONDS = 3;

/**
 * The default job: 20–200 ms of work, and one in 50 that always throws (so that some jobs end
 * in the failed jobs, after 3 attempts: retried after 1 s, then 2 s).
 */
export function defaultJob(n: number): ReturnType<ProducerOptions['job']> {
  return { timeout: LEASE_SECONDS, max_retries: 2, payload: { ms: 20 + ((n * 37) % 181), ...(n % 50 === 7 ? { fail: true } : {}) } };
}

export interface LoadOptions {
  workers: number;
  concurrency?: number;
  producers: number;
  /** Jobs per second, all producers together. */
  perSecond: number;
  job?: ProducerOptions['job'];
  /** The servers client `i` uses, in its order; default every server, starting with server i. */
  urls?: (i: number) => string[];
  /** The clients' retry options (producers and workers); default the client's. */
  retry?: Omit<RetryOptions, 'onRetry'>;
  queue?: string;
}

export class Load {
  readonly ledger = new Ledger();
  readonly workers: WorkerProcess[] = [];
  readonly producers: Producer[] = [];
  #workerCount = 0;

  constructor(
    readonly cluster: Cluster,
    private readonly options: LoadOptions,
    readonly queue = options.queue ?? QUEUE,
  ) {}

  /** Starts the workers, waits until they poll, then starts the producers. */
  async start(): Promise<this> {
    for (let i = 0; i < this.options.workers; i++) this.addWorker();
    await Promise.all(this.workers.map((w) => w.ready));
    const each = this.options.perSecond / this.options.producers;
    for (let i = 0; i < this.options.producers; i++) {
      const urls = this.urls(i);
      this.producers.push(new Producer({ name: `p${i}`, urls, queue: this.queue, perSecond: each, job: this.options.job ?? defaultJob, retry: this.options.retry }, this.ledger).start());
    }
    return this;
  }

  urls(i: number): string[] {
    return this.options.urls?.(i) ?? this.cluster.urlsFrom(i % this.cluster.servers.length);
  }

  /** Starts one more worker (not waiting for it), client `urls` or the next in turn. */
  addWorker(urls?: string[], concurrency = this.options.concurrency ?? 4): WorkerProcess {
    const i = this.#workerCount++;
    const worker = new WorkerProcess(`w${i}`, { urls: urls ?? this.urls(i), queue: this.queue, concurrency, retry: this.options.retry }, this.ledger);
    this.workers.push(worker);
    return worker;
  }

  /** How long the queue took to settle once the producers stopped, ms. */
  settleMs = 0;

  /** Stops the producers, waits until every job is done with, stops the workers, and reconciles. */
  async finish(settleMs = 30_000): Promise<Reconciliation> {
    await Promise.all(this.producers.map((p) => p.stop()));
    const began = Date.now();
    try {
      await settled(this.cluster.db.url, this.queue, settleMs);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${await this.#stuck()}`);
    }
    this.settleMs = Date.now() - began;
    await Promise.all(this.workers.map((w) => w.stop()));
    return this.ledger.reconcile(this.cluster.db.url, this.queue);
  }

  /** What is left in the queue, what the ledger knows of it, and what the workers said last: why it did not settle. */
  async #stuck(): Promise<string> {
    const rows = await sql<Record<string, unknown>>(
      this.cluster.db.url,
      'SELECT id, attempt, retries, run_id, lease_expires_at, run_at, now() AS now FROM relay_jobs WHERE queue = $1 ORDER BY id LIMIT 5',
      [this.queue],
    );
    const byId = this.ledger.byId();
    const jobs = rows.map((row) => `${JSON.stringify(row)}\n    deliveries: ${JSON.stringify(byId.get(String(row.id)) ?? [])}`);
    const workers = this.workers.map((w) => `${w.name} (${w.child.exitCode ?? w.child.signalCode ?? 'running'}): ${w.stderr().slice(-1500)}`);
    return `left in the queue:\n  ${jobs.join('\n  ')}\nworkers:\n${workers.join('\n')}\nservers:\n${this.cluster.tails().slice(-3000)}`;
  }

  /** Kills whatever still runs (after a failure). */
  async abort(): Promise<void> {
    await Promise.all(this.producers.map((p) => p.stop()));
    await Promise.all(this.workers.map((w) => w.kill()));
  }
}
