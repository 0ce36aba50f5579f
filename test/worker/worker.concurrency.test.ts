import { expect } from 'chai';
import { drain, enqueueBatch, eventually, next, relay, sleep, uniqueQueue } from '../helpers/relay.js';
import { Recorder } from '../helpers/worker-kit.js';
import { Worker } from '../../worker/src/index.js';

describe('Worker: concurrency', () => {
  it('without prefetch, never has more than `concurrency` jobs in process, never asks for more than its free slots, and polls twice at once under a backlog', async () => {
    const queue = uniqueQueue('conc');
    const concurrency = 5;
    await enqueueBatch(Array.from({ length: 40 }, (_, i) => ({ id: `j${i}`, queue, timeout: 30, payload: i })));

    let inProcess = 0;
    let most = 0;
    const done = new Map<string, number>();
    const recorder = new Recorder();
    const worker = new Worker({
      logger: {},
      client: recorder.client(),
      queue,
      concurrency,
      prefetch: 0,
      waitSeconds: 1,
      process: async (job) => {
        inProcess++;
        most = Math.max(most, inProcess);
        await sleep(20 + Math.random() * 40);
        inProcess--;
        done.set(job.id, (done.get(job.id) ?? 0) + 1);
      },
    });
    // At each poll, the jobs in process, those asked for by polls under way and those it asks
    // for now fit in its slots.
    const overAsked: string[] = [];
    let askedUnderWay = 0;
    let pollsUnderWay = 0;
    let mostPolls = 0;
    recorder.onRequest = (call) => {
      if (call.path !== '/v1/next') return;
      const asked = Number(call.query.get('num_jobs'));
      if (asked < 1 || worker.jobs.processing + askedUnderWay + asked > concurrency) {
        overAsked.push(`running ${worker.jobs.processing}, under way ${askedUnderWay}, asked ${asked}`);
      }
      askedUnderWay += asked;
      mostPolls = Math.max(mostPolls, ++pollsUnderWay);
    };
    recorder.onResponse = (call) => {
      if (call.path !== '/v1/next') return;
      askedUnderWay -= Number(call.query.get('num_jobs'));
      pollsUnderWay--;
    };

    await worker.start();
    await eventually(async () => done.size === 40, 15_000);
    await worker.stop();

    expect(most, 'jobs in process at once').to.equal(concurrency);
    expect(overAsked).to.deep.equal([]);
    expect(mostPolls, 'polls under way at once while 40 jobs wait').to.equal(2);
    expect([...done.values()].every((n) => n === 1)).to.equal(true);
    expect((await next(queue)).status).to.equal(204);
  });

  it('with prefetch, holds up to concurrency + prefetch jobs, runs concurrency at once, and keeps the waiting ones leased', async function () {
    this.timeout(20_000);
    const queue = uniqueQueue('prefetch');
    // A 1 s lease, jobs of 700 ms, one slot and two prefetched: the third job held waits
    // about 1.4 s for its slot, longer than its lease unless its heartbeats run meanwhile.
    await enqueueBatch(Array.from({ length: 6 }, (_, i) => ({ id: `j${i}`, queue, timeout: 1, max_retries: 0 })));
    const recorder = new Recorder();
    let inProcess = 0;
    let most = 0;
    let mostWaiting = 0;
    const attempts = new Map<string, number[]>();
    const worker = new Worker({
      logger: {},
      client: recorder.client(),
      queue,
      concurrency: 1,
      prefetch: 2,
      process: async (job) => {
        most = Math.max(most, ++inProcess);
        mostWaiting = Math.max(mostWaiting, worker.jobs.waiting);
        attempts.set(job.id, [...(attempts.get(job.id) ?? []), job.attempt]);
        await sleep(700);
        inProcess--;
      },
    });
    const overAsked: string[] = [];
    let askedUnderWay = 0;
    recorder.onRequest = (call) => {
      if (call.path !== '/v1/next') return;
      const asked = Number(call.query.get('num_jobs'));
      const held = worker.jobs.processing + worker.jobs.waiting;
      if (held + askedUnderWay + asked > 3) overAsked.push(`held ${held}, under way ${askedUnderWay}, asked ${asked}`);
      askedUnderWay += asked;
    };
    recorder.onResponse = (call) => {
      if (call.path === '/v1/next') askedUnderWay -= Number(call.query.get('num_jobs'));
    };
    let completed = 0;
    worker.on('completed', () => completed++);
    await worker.start();
    await eventually(async () => completed === 6, 15_000);
    await worker.stop();

    expect(most, 'jobs in process at once').to.equal(1);
    expect(mostWaiting, 'prefetched jobs waiting for the slot').to.equal(2);
    expect(overAsked).to.deep.equal([]);
    expect([...attempts.values()], 'each job delivered once').to.deep.equal(Array.from({ length: 6 }, () => [1]));
    expect(recorder.seen('/v1/heartbeat', 'PATCH').length, 'heartbeats of the waiting jobs').to.be.greaterThan(0);
    expect(await drain(queue)).to.deep.equal([]);
  });

  it("with prefetch 'auto' (the default), leases short jobs ahead of its slots under a backlog, within its bound, each run once", async function () {
    this.timeout(20_000);
    const queue = uniqueQueue('auto');
    const n = 400;
    await enqueueBatch(Array.from({ length: n }, (_, i) => ({ id: `j${i}`, queue, timeout: 30, max_retries: 0 })));
    const recorder = new Recorder();
    const runs = new Map<string, number>();
    let mostWaiting = 0;
    let mostHeld = 0;
    const worker = new Worker({
      logger: {},
      client: recorder.client(),
      queue,
      concurrency: 2,
      waitSeconds: 1,
      process: async (job) => {
        const { processing, waiting } = worker.jobs;
        mostWaiting = Math.max(mostWaiting, waiting);
        mostHeld = Math.max(mostHeld, processing + waiting);
        runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
      },
    });
    expect(worker.settings.prefetch).to.equal('auto');
    let completed = 0;
    worker.on('completed', () => completed++);
    await worker.start();
    await eventually(async () => completed === n, 15_000);
    await worker.stop();

    expect(mostWaiting, 'jobs leased ahead, waiting for a slot').to.be.greaterThan(0);
    expect(mostHeld).to.be.at.most(2 + 1000);
    expect(runs.size).to.equal(n);
    expect([...runs.values()].every((c) => c === 1), 'each job run once').to.equal(true);
    expect(await drain(queue)).to.deep.equal([]);
  });

  it("with prefetch 'auto', leases nothing ahead for jobs far longer than a poll's round trip: another worker takes the rest", async function () {
    this.timeout(20_000);
    const queue = uniqueQueue('auto-long');
    await enqueueBatch(Array.from({ length: 6 }, (_, i) => ({ id: `j${i}`, queue, timeout: 30 })));
    const ran = { a: [] as string[], b: [] as string[] };
    let mostWaiting = 0;
    const workers = (['a', 'b'] as const).map(
      (name) =>
        new Worker({
          logger: {},
          baseUrl: relay().url,
          queue,
          concurrency: 1,
          waitSeconds: 1,
          process: async (job) => {
            ran[name].push(job.id);
            await sleep(1_000);
            for (const w of workers) mostWaiting = Math.max(mostWaiting, w.jobs.waiting);
          },
        }),
    );
    await workers[0]!.start();
    // The first worker has seen its first poll's round trip and is in its first job's handler.
    await eventually(async () => ran.a.length === 1, 5_000);
    await workers[1]!.start();
    await eventually(async () => ran.a.length + ran.b.length === 6, 15_000);
    await Promise.all(workers.map((w) => w.stop()));

    expect(mostWaiting, 'jobs leased ahead').to.equal(0);
    expect(ran.b.length, 'jobs the second worker got').to.be.at.least(2);
  });

  it('with concurrency 1, runs one job at a time, in order', async () => {
    const queue = uniqueQueue('conc');
    await enqueueBatch(Array.from({ length: 6 }, (_, i) => ({ id: `j${i}`, queue, timeout: 30 })));
    const order: string[] = [];
    let inProcess = 0;
    let most = 0;
    const worker = new Worker({
      logger: {},
      client: new Recorder().client(),
      queue,
      concurrency: 1,
      process: async (job) => {
        most = Math.max(most, ++inProcess);
        order.push(job.id);
        await sleep(10);
        inProcess--;
      },
    });
    await worker.start();
    await eventually(async () => order.length === 6, 10_000);
    await worker.stop();
    expect(most).to.equal(1);
    expect(order).to.deep.equal(['j0', 'j1', 'j2', 'j3', 'j4', 'j5']);
    expect(await drain(queue)).to.deep.equal([]);
  });
});
