import { expect } from 'chai';
import { drain, enqueueBatch, eventually, next, sleep, uniqueQueue } from '../helpers/relay.js';
import { Recorder } from '../helpers/worker-kit.js';
import { Worker } from '../../worker/src/index.js';

describe('Worker: concurrency', () => {
  it('never has more than `concurrency` jobs in process, never asks for more than its free slots, and polls twice at once under a backlog', async () => {
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
