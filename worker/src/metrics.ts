/**
 * The worker's Prometheus metrics, when the application passes a prom-client registry
 * (`metrics: { registry }`). prom-client is an optional peer dependency: it is loaded only
 * then, and the registry is typed by what is used of it, so that neither the worker's code nor
 * its types need prom-client otherwise. Several workers may share one registry: each metric is
 * created once and labelled by queue.
 */
import type { EventEmitter } from 'node:events';

/** What the worker uses of a prom-client Registry (`new Registry()` or prom-client's `register`). */
export interface MetricsRegistry {
  getSingleMetric(name: string): unknown;
  registerMetric(metric: never): void;
}

export interface WorkerMetricsOptions {
  /** The prom-client registry to add the worker's metrics to. */
  registry: MetricsRegistry;
}

interface LabelledCounter {
  inc(labels: { queue: string }, value?: number): void;
}
interface LabelledHistogram {
  observe(labels: { queue: string }, value: number): void;
}
interface PromClient {
  Counter: new (config: { name: string; help: string; labelNames: string[]; registers: unknown[] }) => LabelledCounter;
  Histogram: new (config: { name: string; help: string; labelNames: string[]; buckets: number[]; registers: unknown[] }) => LabelledHistogram;
}

/** Seconds: from 5 ms to 1 h. */
const HANDLER_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

async function loadPromClient(): Promise<PromClient> {
  try {
    const loaded = (await import('prom-client')) as unknown as PromClient & { default?: PromClient };
    return loaded.Counter ? loaded : loaded.default!;
  } catch (error) {
    throw new Error('the worker option metrics needs prom-client: npm install prom-client', { cause: error });
  }
}

/** The events the metrics count, as the Worker emits them. */
type Counted = 'started' | 'completed' | 'failed' | 'processed' | 'heartbeat' | 'leaseLost';
type Emitter = Pick<EventEmitter, 'on'>;

/** Counts the worker's events into the registry's metrics, labelled with the worker's queue. */
export async function instrument(worker: Emitter, queue: string, options: WorkerMetricsOptions): Promise<void> {
  const prom = await loadPromClient();
  const registers = [options.registry];
  const labelNames = ['queue'];
  const counter = (name: string, help: string) =>
    (options.registry.getSingleMetric(name) as LabelledCounter | undefined) ?? new prom.Counter({ name, help, labelNames, registers });
  const started = counter('relay_worker_jobs_started_total', 'Jobs whose process began.');
  const succeeded = counter('relay_worker_jobs_succeeded_total', 'Jobs completed on the server after process resolved.');
  const failed = counter('relay_worker_jobs_failed_total', 'Jobs failed on the server (process threw, called job.fail, or ran past jobTimeoutMs).');
  const heartbeats = counter('relay_worker_heartbeats_total', 'Heartbeats the server answered (leases renewed).');
  const leasesLost = counter('relay_worker_leases_lost_total', 'Deliveries the worker lost hold of (a 404, or the lease ran out unrenewed).');
  const name = 'relay_worker_handler_duration_seconds';
  const duration =
    (options.registry.getSingleMetric(name) as LabelledHistogram | undefined) ??
    new prom.Histogram({ name, help: 'How long process ran for a job, whatever its outcome.', labelNames, buckets: HANDLER_BUCKETS, registers });
  const labels = { queue };
  const on = (event: Counted, listener: (...args: any[]) => void) => worker.on(event, listener);
  on('started', () => started.inc(labels));
  on('completed', () => succeeded.inc(labels));
  on('failed', () => failed.inc(labels));
  on('heartbeat', () => heartbeats.inc(labels));
  on('leaseLost', () => leasesLost.inc(labels));
  on('processed', (_job: unknown, durationMs: number) => duration.observe(labels, durationMs / 1000));
}
