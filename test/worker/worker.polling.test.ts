import { expect } from 'chai';
import { RelayClient } from '@relay-ts/client';
import { TestProxy } from '../helpers/proxy.js';
import { enqueue, relay, sleep, uniqueQueue } from '../helpers/relay.js';
import { Recorder } from '../helpers/worker-kit.js';
import { closedPort } from '../helpers/net.js';
import { Worker } from '../../worker/src/index.js';

/** Runs an idle worker for `ms` and returns the polls it sent, and the gaps between them. */
async function idle(ms: number, options: { waitSeconds?: number; pollIntervalMs?: number; maxPollIntervalMs?: number }) {
  const recorder = new Recorder();
  const worker = new Worker({ logger: {}, client: recorder.client(), queue: uniqueQueue('idle'), ...options, process: async () => undefined });
  const from = Date.now();
  await worker.start();
  await sleep(ms);
  await worker.stop();
  const polls = recorder.polls(from);
  const gaps = polls.slice(1).map((p, i) => p.at - polls[i]!.at);
  return { polls: polls.length, perSecond: polls.length / (ms / 1000), gaps };
}


describe('Worker: polling an empty queue costs a bounded number of requests', () => {
  it('with long poll (the default, wait 30 s): one request while idle', async function () {
    this.timeout(10_000);
    const { polls, perSecond } = await idle(3000, {});
    console.log(`      idle, long poll wait=30: ${polls} poll in 3 s (${perSecond.toFixed(2)}/s; 1 per 30 s by design)`);
    expect(polls).to.equal(1);
  });

  it('with long poll wait=1: one request per second', async function () {
    this.timeout(10_000);
    const { polls, perSecond, gaps } = await idle(4000, { waitSeconds: 1 });
    console.log(`      idle, long poll wait=1: ${polls} polls in 4 s (${perSecond.toFixed(2)}/s)`);
    expect(polls).to.be.within(4, 5);
    for (const gap of gaps) expect(gap).to.be.at.least(950);
  });

  it('with wait=0: backs off with jitter up to the ceiling', async function () {
    this.timeout(15_000);
    const { polls, perSecond, gaps } = await idle(6000, { waitSeconds: 0 });
    const late = gaps.slice(-2);
    console.log(
      `      idle, wait=0 (backoff 100 ms doubling to 5 s): ${polls} polls in 6 s (${perSecond.toFixed(2)}/s); gaps ${gaps.join(', ')} ms`,
    );
    // Delays drawn from [50,100], [100,200], [200,400], [400,800], [800,1600], [1600,3200], [2500,5000]...
    expect(polls).to.be.within(5, 9);
    for (const [i, gap] of gaps.entries()) expect(gap, `gap ${i}`).to.be.at.least(Math.min(5000, 100 * 2 ** i) / 2 - 5);
    for (const gap of late) expect(gap).to.be.at.most(5100);
  });

  it('with wait=0: the backoff resets when a job comes', async function () {
    this.timeout(10_000);
    const queue = uniqueQueue('idle');
    const recorder = new Recorder();
    const got: number[] = [];
    const worker = new Worker({ logger: {}, client: recorder.client(), queue, waitSeconds: 0, pollIntervalMs: 50, maxPollIntervalMs: 1000, process: async () => void got.push(Date.now()) });
    await worker.start();
    await sleep(2000); // backed off to the 1 s ceiling
    await enqueue({ id: 'a', queue, timeout: 30 });
    const enqueuedAt = Date.now();
    while (got.length === 0) await sleep(10);
    expect(got[0]! - enqueuedAt).to.be.below(1100);
    await sleep(400);
    await worker.stop();
    // After the poll that got the job, the next ones start again from 50 ms.
    const after = recorder.polls(got[0]!);
    expect(after.length).to.be.at.least(3);
    expect(after[2]!.at - got[0]!).to.be.below(400);
  });

  it('does not spin when long polls come back empty at once (a server or proxy that does not hold them)', async function () {
    this.timeout(10_000);
    const proxy = await TestProxy.start(relay().url);
    proxy.always({ status: 204 });
    try {
      const worker = new Worker({ logger: {}, baseUrl: proxy.url, queue: uniqueQueue('idle'), waitSeconds: 30, process: async () => undefined });
      await worker.start();
      await sleep(3000);
      await worker.stop();
      const polls = proxy.seen('/v1/next').length;
      console.log(`      early empty long polls: ${polls} polls in 3 s`);
      expect(polls).to.be.within(3, 9);
    } finally {
      await proxy.close();
    }
  });

  it('backs off on errors: a server that is down, then one that answers 429 with Retry-After', async function () {
    this.timeout(15_000);
    const recorder = new Recorder();
    const port = await closedPort();
    const down = new Worker({
      logger: {},
      client: new RelayClient({ baseUrl: `http://127.0.0.1:${port}`, fetch: recorder.fetch, retry: false }),
      queue: 'q',
      pollIntervalMs: 100,
      maxPollIntervalMs: 1000,
      process: async () => undefined,
    });
    const delays: number[] = [];
    down.on('pollError', (_error, retryInMs) => delays.push(retryInMs));
    await down.start();
    await sleep(3000);
    await down.stop();
    console.log(`      server down: ${recorder.calls.length} polls in 3 s; delays ${delays.join(', ')} ms`);
    expect(recorder.calls.length).to.be.within(4, 9);
    expect(delays.slice(-2).every((d) => d >= 500 && d <= 1000)).to.equal(true);

    const proxy = await TestProxy.start(relay().url);
    proxy.always({ status: 429, headers: { 'Retry-After': '1' }, body: { type: 'about:blank', title: 'Too Many Requests', status: 429, detail: 'busy' } });
    try {
      const busy = new Worker({
        logger: {},
        client: new RelayClient({ baseUrl: proxy.url, retry: false }),
        queue: 'q',
        process: async () => undefined,
      });
      await busy.start();
      await sleep(2500);
      await busy.stop();
      expect(proxy.seen('/v1/next').length).to.be.within(2, 3);
    } finally {
      await proxy.close();
    }
  });
});
