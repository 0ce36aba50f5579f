/**
 * relay-ts as its users run it: producers through RelayClient, consumers through the Worker
 * runtime of @relay-ts/worker, against the relay server running as a child process.
 */
import { performance } from 'node:perf_hooks';
import { RelayClient, type NewJob } from '@relay-ts/client';
import { Worker, nodeTransport, type ActiveJob } from '@relay-ts/worker';
import { JobTally, pace, sleep, within, type LatencyRun, type ProcessRun, type TimedRun } from './phases.js';

/** The application_name of the relay server's connections (server/src/db/postgres.ts). */
export const RELAY_APPLICATION_NAME = 'relay-ts';

export interface WorkerRunOptions {
  concurrency: number;
  /** Each job checkpoints a small state with one `job.heartbeat(state)` before it returns. */
  heartbeat?: boolean;
  /** The worker's completionBatchWindowMs: 0 completes each job with its own DELETE /v1/complete. */
  completionWindowMs?: number;
  /** The worker's prefetch (jobs leased beyond concurrency); default 0. */
  prefetch?: number | 'auto';
}

/**
 * A worker whose process() only records the job: the phase measures the queue, not the work.
 * It settles `done` when `n` jobs have been completed (the worker's `completed` event, i.e.
 * the server answered the completion), or fails it on any request error or lost lease.
 */
class CountingWorker<P> extends Worker<P> {
  readonly tally: JobTally;
  completed = 0;
  readonly done: Promise<void>;

  constructor(
    options: ConstructorParameters<typeof Worker<P>>[0],
    n: number,
    private readonly onJob: (job: ActiveJob<P>) => void = () => undefined,
    private readonly heartbeat = false,
  ) {
    super(options);
    this.tally = new JobTally(n);
    this.done = new Promise<void>((resolve, reject) => {
      this.on('completed', () => {
        if (++this.completed >= n) resolve();
      });
      const fail = (what: string) => (...args: unknown[]) => reject(new Error(`${what}: ${String(args.find((a) => a instanceof Error) ?? args[0])}`));
      this.on('requestError', fail('worker request error'));
      this.on('pollError', fail('worker poll error'));
      this.on('leaseLost', fail('worker lost a lease'));
      this.on('failed', fail('job failed'));
    });
    this.done.catch(() => undefined);
  }

  override async process(job: ActiveJob<P>): Promise<void> {
    this.onJob(job);
    this.tally.processed(job.id);
    if (this.heartbeat) await job.heartbeat({ step: 1 });
  }
}

export interface RelayOptions {
  /** Whether clients send an Idempotency-Key with each write (the client's default: true). */
  idempotencyKeys?: boolean;
  /** The workers' settleOnPoll (default: the worker's, true). */
  settleOnPoll?: boolean;
}

export class Relay {
  /** HTTP requests its clients and workers sent (long polls included): the round trips a job costs. */
  requests = 0;

  constructor(
    readonly baseUrl: string,
    private readonly options: RelayOptions = {},
  ) {}

  /** The Node transport, counting requests. */
  private transport(): ReturnType<typeof nodeTransport> {
    const transport = nodeTransport();
    const send = transport.fetch;
    return {
      ...transport,
      fetch: ((...args: Parameters<typeof send>) => {
        this.requests++;
        return send(...args);
      }) as typeof send,
    };
  }

  /** A client that fails loudly: a retry would hide an error in the figures. */
  client<P = unknown>(): RelayClient<P> {
    // The Node transport the Worker uses too: Node's built-in fetch costs more CPU per request.
    return new RelayClient<P>({ baseUrl: this.baseUrl, retry: false, idempotencyKeys: this.options.idempotencyKeys, ...this.transport() });
  }

  private settleOnPoll(): { settleOnPoll?: boolean } {
    return this.options.settleOnPoll === undefined ? {} : { settleOnPoll: this.options.settleOnPoll };
  }

  /** The client a worker makes for itself from baseUrl (retries on), with the keys as configured. */
  private workerClient<P>(): RelayClient<P> {
    return new RelayClient<P>({ baseUrl: this.baseUrl, idempotencyKeys: this.options.idempotencyKeys, ...this.transport() });
  }

  /** n jobs, one `POST /enqueue` each, from `producers` concurrent loops (a client each). */
  async enqueueSingle(queue: string, n: number, producers: number): Promise<TimedRun> {
    const clients = Array.from({ length: producers }, () => this.client<{ i: number }>());
    let next = 0;
    const start = performance.now();
    await Promise.all(
      clients.map(async (c) => {
        for (let id = next++; id < n; id = next++) {
          await c.enqueue({ id: String(id), queue, timeout: 60, payload: { i: id } });
        }
      }),
    );
    return { jobs: n, seconds: (performance.now() - start) / 1000 };
  }

  /** n jobs in `POST /enqueue/batch` requests of `batch` jobs, one after the other. */
  async enqueueBatch(queue: string, n: number, batch: number): Promise<TimedRun> {
    const c = this.client<{ i: number }>();
    const jobs: NewJob<{ i: number }>[] = Array.from({ length: n }, (_, i) => ({ id: String(i), queue, timeout: 60, payload: { i } }));
    const start = performance.now();
    await c.enqueueBatch(jobs, { maxBatchSize: batch });
    return { jobs: n, seconds: (performance.now() - start) / 1000 };
  }

  /**
   * The n jobs preloaded in queue, through the Worker runtime. Timed from start() until the
   * server has answered the n-th completion; stop() comes after the clock stops.
   */
  async process(queue: string, n: number, options: WorkerRunOptions): Promise<ProcessRun> {
    const worker = new CountingWorker<{ i: number }>(
      { client: this.workerClient<{ i: number }>(), queue, concurrency: options.concurrency, prefetch: options.prefetch ?? 0, completionBatchWindowMs: options.completionWindowMs ?? 0, ...this.settleOnPoll() },
      n,
      undefined,
      options.heartbeat,
    );
    const start = performance.now();
    try {
      await worker.start();
      await within(worker.done, Math.max(60_000, n * 5), `processing ${n} jobs`);
      const seconds = (performance.now() - start) / 1000;
      return { jobs: n, seconds, tally: worker.tally };
    } finally {
      await worker.stop();
    }
  }

  /**
   * Jobs enqueued one `POST /enqueue` each at `rate` per second for `seconds`, processed by a
   * worker that long-polls (the runtime's default wait). Latency: from just before the
   * enqueue is sent to the start of process().
   */
  async latency(queue: string, rate: number, seconds: number, options: WorkerRunOptions): Promise<LatencyRun> {
    const n = Math.round(rate * seconds);
    const samples: number[] = [];
    const worker = new CountingWorker<{ t: number }>(
      { client: this.workerClient<{ t: number }>(), queue, concurrency: options.concurrency, ...(options.completionWindowMs === undefined ? {} : { completionBatchWindowMs: options.completionWindowMs }), ...this.settleOnPoll() },
      n,
      (job) => samples.push(performance.now() - job.payload.t),
    );
    const producer = this.client<{ t: number }>();
    await worker.start();
    // Let the first long poll reach the server and find the queue empty.
    await sleep(100);
    try {
      const start = performance.now();
      const enqueues: Promise<void>[] = [];
      await pace(n, rate, (id) => {
        enqueues.push(producer.enqueue({ id: String(id), queue, timeout: 60, payload: { t: performance.now() } }));
      });
      await Promise.all(enqueues);
      await within(worker.done, 10_000, `the worker's processing of the last of ${n} jobs`);
      return { jobs: n, seconds: (performance.now() - start) / 1000, tally: worker.tally, samples };
    } finally {
      await worker.stop();
    }
  }
}
