import { expect } from 'chai';
import { RelayClient } from '@relay-ts/client';
import { TestProxy } from '../helpers/proxy.js';
import { drain, eventually, relay, uniqueQueue } from '../helpers/relay.js';
import { gate, within } from '../helpers/worker-kit.js';
import { Worker } from '../../worker/src/index.js';

/*
 * A worker given several servers of one database (two proxies in front of the suite's real
 * server): while the first is away, its polls, heartbeats and completions go to the second,
 * with no lease lost; once the first is back, it is used again.
 */

describe('Worker fail-over: several base URLs', () => {
  let a: TestProxy;
  let b: TestProxy;
  beforeEach(async () => {
    [a, b] = await Promise.all([TestProxy.start(relay().url), TestProxy.start(relay().url)]);
  });
  afterEach(async () => {
    await Promise.all([a.close(), b.close()]);
  });

  it('takes a list of URLs for the client it makes; refuses an empty one', () => {
    const worker = new Worker({ baseUrl: [a.url, b.url], queue: 'q', process: async () => undefined });
    expect(worker.settings.client.baseUrls).to.deep.equal([a.url, b.url]);
    expect(() => new Worker({ baseUrl: [], queue: 'q', process: async () => undefined })).to.throw(TypeError, /baseUrl must be a URL, or a non-empty list/);
    expect(() => new Worker({ baseUrl: [a.url, ''], queue: 'q', process: async () => undefined })).to.throw(TypeError, /baseUrl/);
  });

  it('its first server going away mid-job: heartbeats, the completion and the polls go to the next, no lease is lost, and it comes back', async function () {
    this.timeout(30_000);
    const queue = uniqueQueue('failover');
    const producer = new RelayClient({ baseUrl: relay().url });
    await producer.enqueue({ id: 'long', queue, timeout: 1, max_retries: 0 });
    const inProcess = gate();
    const release = gate();
    const done: string[] = [];
    const lost: string[] = [];
    const worker = new Worker({
      baseUrl: [a.url, b.url],
      queue,
      waitSeconds: 1,
      logger: {},
      process: async (job) => {
        if (job.id === 'long') {
          inProcess.open();
          await release.promise;
        }
      },
    });
    worker.on('completed', (job) => done.push(job.id));
    worker.on('leaseLost', (job) => lost.push(job.id));
    await worker.start();
    try {
      await within(inProcess.promise, 5000, 'the job started');
      expect(a.seen('/v1/next').length).to.be.at.least(1);
      await a.down();
      // Three leases long (timeout 1 s): only heartbeats through b keep it.
      await eventually(async () => b.seen('/v1/heartbeat').length >= 3, 5000, 20);
      release.open();
      await eventually(async () => done.includes('long'), 5000, 20);
      expect(lost).to.deep.equal([]);
      // The completion went to b: alone, or on a poll (POST /v1/next).
      const completions = [...b.seen('/v1/complete/batch'), ...b.seen('/v1/next').filter((r) => r.method === 'POST')]
        .flatMap((r) => JSON.parse(r.body || '[]') as Array<{ job_id: string }>)
        .filter((r) => r.job_id === 'long');
      expect(completions).to.have.length(1);

      // Jobs enqueued meanwhile are taken through b.
      await producer.enqueue({ id: 'meanwhile', queue, timeout: 30 });
      await eventually(async () => done.includes('meanwhile'), 5000, 20);
      const pollsOnA = a.seen('/v1/next').length;

      // a is back: once its back-off is over and the poll under way ends, polls go to it again.
      await a.up();
      await eventually(async () => a.seen('/v1/next').length > pollsOnA, 8000, 50);
      await producer.enqueue({ id: 'after', queue, timeout: 30 });
      await eventually(async () => done.includes('after'), 5000, 20);
      expect(lost).to.deep.equal([]);
    } finally {
      release.open();
      await worker.stop();
    }
    expect(await drain(queue)).to.deep.equal([]);
  });
});
