import { expect } from 'chai';
import { Registry } from 'prom-client';
import { parseMetrics, valueOf } from '../helpers/metrics.js';
import { call, enqueue, eventually, relay, uniqueQueue } from '../helpers/relay.js';
import { LeaseLostError, Worker, type ActiveJob } from '../../worker/src/index.js';

/*
 * The worker's metrics (issue 13): its events, and, given a prom-client registry, the same
 * counts as metrics labelled by queue. Several workers may share one registry.
 */

describe('Worker: metrics and events', () => {
  it('counts jobs started, succeeded and failed, handler time, heartbeats and lost leases', async function () {
    this.timeout(20_000);
    const registry = new Registry();
    const queue = uniqueQueue('wmetrics');
    await enqueue({ id: 'ok-1', queue, timeout: 30 });
    await enqueue({ id: 'ok-2', queue, timeout: 30 });
    await enqueue({ id: 'bad', queue, timeout: 30 });
    await enqueue({ id: 'lost', queue, timeout: 30 });
    const seen = { processed: [] as Array<[string, number, unknown]>, heartbeat: [] as string[] };
    const worker = new Worker({
      logger: {},
      baseUrl: relay().url,
      queue,
      concurrency: 4,
      metrics: { registry },
      process: async (job: ActiveJob) => {
        if (job.id === 'bad') throw new Error('broken');
        if (job.id === 'lost') {
          // Cancelled by an operator while it runs: the next heartbeat loses the lease.
          await call('DELETE', `/v1/queues/${queue}/jobs/lost`);
          const error = await job.heartbeat().catch((e: unknown) => e);
          expect(error).to.be.instanceOf(LeaseLostError);
          return;
        }
        await job.heartbeat({ step: 1 });
      },
    });
    worker.on('processed', (job, ms, error) => seen.processed.push([job.id, ms, error]));
    worker.on('heartbeat', (job) => seen.heartbeat.push(job.id));
    await worker.start();
    let text = '';
    await eventually(async () => {
      text = await registry.metrics();
      const s = parseMetrics(text);
      return valueOf(s, 'relay_worker_jobs_succeeded_total', { queue }) === 2 && valueOf(s, 'relay_worker_jobs_failed_total', { queue }) === 1;
    }, 10_000);
    await worker.stop();
    const s = parseMetrics(await registry.metrics());
    const v = (name: string) => valueOf(s, name, { queue });
    expect({
      started: v('relay_worker_jobs_started_total'),
      succeeded: v('relay_worker_jobs_succeeded_total'),
      failed: v('relay_worker_jobs_failed_total'),
      heartbeats: v('relay_worker_heartbeats_total'),
      leasesLost: v('relay_worker_leases_lost_total'),
      handled: v('relay_worker_handler_duration_seconds_count'),
    }).to.deep.equal({ started: 4, succeeded: 2, failed: 1, heartbeats: 2, leasesLost: 1, handled: 4 });
    expect(seen.heartbeat.sort()).to.deep.equal(['ok-1', 'ok-2']);
    expect(seen.processed.map(([id]) => id).sort()).to.deep.equal(['bad', 'lost', 'ok-1', 'ok-2']);
    expect(seen.processed.find(([id]) => id === 'bad')![2]).to.be.instanceOf(Error);
    expect(seen.processed.find(([id]) => id === 'ok-1')![2]).to.equal(undefined);
    for (const [, ms] of seen.processed) expect(ms).to.be.a('number').and.at.least(0);
  });

  it('several workers share one registry, each labelled with its queue', async function () {
    this.timeout(20_000);
    const registry = new Registry();
    const queues = [uniqueQueue('wm-a'), uniqueQueue('wm-b')];
    const workers = queues.map((queue) => new Worker({ logger: {}, baseUrl: relay().url, queue, metrics: { registry }, process: async () => undefined }));
    for (const queue of queues) await enqueue({ id: 'x', queue, timeout: 30 });
    await Promise.all(workers.map((w) => w.start()));
    await eventually(async () => {
      const s = parseMetrics(await registry.metrics());
      return queues.every((queue) => valueOf(s, 'relay_worker_jobs_succeeded_total', { queue }) === 1);
    });
    await Promise.all(workers.map((w) => w.stop()));
  });

  it('refuses a metrics option without a registry', () => {
    expect(() => new Worker({ baseUrl: relay().url, queue: 'q', metrics: { registry: {} as never }, process: async () => undefined })).to.throw(TypeError, /metrics/);
  });
});
