import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { RelayClient, type NewJob, type RetryOptions } from '@relay-ts/client';
import { nodeTransport } from '@relay-ts/worker';
import { sql } from '../helpers/postgres.js';
import type { Ledger } from './ledger.js';

/**
 * The load of a fault scenario: producers in this process, enqueueing through @relay-ts/client
 * at a steady rate, and workers in processes of their own (fixtures/ledger-worker.ts, the real
 * @relay-ts/worker), so that one can be killed. Both write to the scenario's ledger.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURE = fileURLToPath(new URL('./fixtures/ledger-worker.ts', import.meta.url));

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `condition` until it holds; throws `what` when `timeoutMs` passes first. */
export async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

export interface Payload {
  ms: number;
  firstMs?: number;
  fail?: boolean;
}

export interface ProducerOptions {
  name: string;
  /** The servers, in this producer's order of preference. */
  urls: string[];
  queue: string;
  perSecond: number;
  /** The job numbered `n` (its id is made here). */
  job: (n: number) => Omit<NewJob<Payload>, 'id' | 'queue'>;
  /** The client's retry options; default the client's defaults. */
  retry?: RetryOptions;
}

/** One enqueue: when it was sent, how long it took (retries and fail-over included), how it ended. */
export interface Call {
  at: number;
  ms: number;
  ok: boolean;
}

export class Producer {
  readonly calls: Call[] = [];
  readonly #client: RelayClient<Payload>;
  #stop = false;
  #loop: Promise<void> | undefined;
  readonly #pending = new Set<Promise<void>>();

  constructor(
    private readonly options: ProducerOptions,
    private readonly ledger: Ledger,
  ) {
    this.#client = new RelayClient<Payload>({ baseUrl: options.urls, retry: options.retry, ...nodeTransport() });
  }

  start(): this {
    this.#loop = this.#run();
    return this;
  }

  /** Stops sending and waits for the enqueues under way. */
  async stop(): Promise<void> {
    this.#stop = true;
    await this.#loop;
    await Promise.all(this.#pending);
  }

  async #run(): Promise<void> {
    const { name, queue, perSecond, job } = this.options;
    const began = Date.now();
    let n = 0;
    while (!this.#stop) {
      // As many as are due by now: a steady rate on average, whatever the timers' drift.
      const due = Math.floor(((Date.now() - began) / 1000) * perSecond);
      for (; n < due && this.#pending.size < 200; n++) {
        const id = `${name}-${n}`;
        const at = Date.now();
        this.ledger.attempted.set(id, at);
        const sending = this.#client.enqueue({ id, queue, ...job(n) }).then(
          () => {
            this.ledger.accepted.add(id);
            this.calls.push({ at, ms: Date.now() - at, ok: true });
          },
          () => {
            this.ledger.enqueueErrors++;
            this.calls.push({ at, ms: Date.now() - at, ok: false });
          },
        );
        this.#pending.add(sending);
        void sending.finally(() => this.#pending.delete(sending));
      }
      await sleep(20);
    }
  }
}

export interface WorkerProcessOptions {
  urls: string[];
  queue: string;
  concurrency?: number;
  waitSeconds?: number;
  /** Its client's retry options; default the client's. */
  retry?: Omit<RetryOptions, 'onRetry'>;
}

const TAIL_BYTES = 8192;

/** A worker process writing to the ledger. */
export class WorkerProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  readonly ready: Promise<void>;
  #stderr = '';
  #lines = 0;

  constructor(
    readonly name: string,
    options: WorkerProcessOptions,
    private readonly ledger: Ledger,
  ) {
    this.child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
      cwd: ROOT,
      env: {
        ...process.env,
        RELAY_URLS: options.urls.join(','),
        QUEUE: options.queue,
        CONCURRENCY: String(options.concurrency ?? 4),
        WAIT_SECONDS: String(options.waitSeconds ?? 5),
        ...(options.retry === undefined ? {} : { RETRY: JSON.stringify(options.retry) }),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    workers.add(this.child);
    // 'close', not 'exit': once its output is read to the end, every line it wrote is in the ledger.
    this.exited = new Promise((resolve) => this.child.once('close', () => (workers.delete(this.child), resolve())));
    let partial = '';
    let onReady!: () => void;
    this.ready = new Promise<void>((resolve, reject) => {
      onReady = resolve;
      void this.exited.then(() => reject(new Error(`worker ${name} exited before it was ready:\n${this.#stderr}`)));
      setTimeout(() => reject(new Error(`worker ${name} not ready within 30 s:\n${this.#stderr}`)), 30_000).unref();
    });
    this.ready.catch(() => undefined);
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      partial += chunk;
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const text of lines) {
        if (!text) continue;
        const line = JSON.parse(text) as Record<string, unknown>;
        this.#lines++;
        if (line.e === 'ready') onReady();
        else ledger.record(name, line);
      }
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.#stderr = (this.#stderr + chunk).slice(-TAIL_BYTES)));
  }

  /** The jobs whose handler runs now. */
  running(): number {
    let n = 0;
    for (const d of this.ledger.deliveries.values()) if (d.holder === this.name && d.started !== undefined && d.returned === undefined && d.lost === undefined && d.killed === undefined) n++;
    return n;
  }

  /** What it wrote to stderr last (its warnings). */
  stderr(): string {
    return this.#stderr;
  }

  /** SIGKILL, mid-job: the ledger notes that what it held stopped now. */
  async kill(): Promise<void> {
    const at = Date.now();
    this.child.kill('SIGKILL');
    await this.exited;
    this.ledger.killed(this.name, at);
  }

  /** SIGTERM: it finishes the jobs in hand, sends their completions, and exits. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    await this.exited;
    clearTimeout(timer);
    // Killed after the time allowed: what it held stopped then.
    if (this.child.signalCode === 'SIGKILL') this.ledger.killed(this.name, Date.now());
  }
}

const workers = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of workers) child.kill('SIGKILL');
});

/** Waits until no job of `queue` is waiting or in flight: everything accepted was completed or failed. */
export async function settled(databaseUrl: string, queue: string, timeoutMs: number): Promise<void> {
  await until(
    async () => (await sql<{ n: number }>(databaseUrl, 'SELECT count(*)::int AS n FROM relay_jobs WHERE queue = $1', [queue]))[0]!.n === 0,
    timeoutMs,
    `the jobs of ${queue} completed or failed`,
    250,
  );
}

/** The most of `values`, 0 for none. */
export function longest(values: number[]): number {
  return values.reduce((a, b) => Math.max(a, b), 0);
}

/** The median of `values`, 0 for none. */
export function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
