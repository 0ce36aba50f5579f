import { connect } from 'node:net';
import { expect } from 'chai';
import type { RelayServer } from '../../server/src/index.js';
import { call, eventually, sleep, startRelay, uniqueQueue, type JobInput } from '../helpers/relay.js';

/*
 * The server here re-checks waiting queues only once a minute: a wake-up test that passes
 * within its bound passed by a working wake-up, not by the re-check. A test waits for the
 * server to report its polls waiting instead of sleeping an arbitrary time.
 */
let server: RelayServer;
const at = () => server.url;
const waitNext = (queue: string, wait: number, num_jobs?: number, baseUrl?: string) =>
  call('GET', '/v1/next', { query: { queue, wait, num_jobs }, baseUrl: baseUrl ?? at() });
const enqueue = (job: JobInput) => call('POST', '/enqueue', { json: job, baseUrl: at() });
const next = (queue: string) => call('GET', '/v1/next', { query: { queue }, baseUrl: at() });
const drain = async (queue: string) => {
  const res = await call('GET', '/v1/next', { query: { queue, num_jobs: 1000 }, baseUrl: at() });
  return res.status === 200 ? (res.body as Array<{ id: string; attempt: number }>) : [];
};
/** Resolves once n requests wait on the server (or on `on`). */
const waiting = (n: number, on: RelayServer = server) => eventually(async () => on.waitingPolls >= n, 5_000, 10);
/** A wake-up's bound: far below the re-check interval, far above a working wake-up. */
const WAKE_BOUND_MS = 5_000;

describe('GET /v1/next?wait (long poll)', () => {
  before(async () => {
    server = await startRelay({ pollRecheckMs: 60_000 });
  });
  after(async () => {
    await server?.close();
  });

  it('holds the request until the wait passes, then answers 204', async () => {
    const started = Date.now();
    const res = await waitNext(uniqueQueue(), 1.5);
    expect(res.status).to.equal(204);
    expect(Date.now() - started).to.be.at.least(1400);
  });

  it('answers as soon as a job is enqueued', async () => {
    const queue = uniqueQueue();
    const started = Date.now();
    const pending = waitNext(queue, 20);
    await waiting(1);
    const enqueued = Date.now();
    await enqueue({ id: 'a', queue, timeout: 5 });
    const res = await pending;
    expect(res.status).to.equal(200);
    expect(res.body.map((j: { id: string }) => j.id)).to.deep.equal(['a']);
    expect(Date.now() - enqueued).to.be.below(WAKE_BOUND_MS);
    expect(Date.now() - started).to.be.below(20_000);
  });

  it('wakes for a batch and for a rescheduled job', async () => {
    const queue = uniqueQueue();
    const pending = waitNext(queue, 20, 10);
    await waiting(1);
    let started = Date.now();
    await call('POST', '/enqueue/batch', { json: [{ id: 'a', queue, timeout: 30 }, { id: 'b', queue, timeout: 30 }], baseUrl: at() });
    const res = await pending;
    expect(res.body.map((j: { id: string }) => j.id)).to.deep.equal(['a', 'b']);
    expect(Date.now() - started).to.be.below(WAKE_BOUND_MS);
    const again = waitNext(queue, 20);
    await waiting(1);
    started = Date.now();
    await call('POST', '/reschedule', { json: { id: 'a', queue, timeout: 30 }, baseUrl: at() });
    expect((await again).body[0].id).to.equal('a');
    expect(Date.now() - started).to.be.below(WAKE_BOUND_MS);
  });

  it('finds a job whose notification came too early (run_at just ahead) by the re-check', async () => {
    const quick = await startRelay({ pollRecheckMs: 300 });
    try {
      const queue = uniqueQueue();
      const pending = waitNext(queue, 20, 1, quick.url);
      await waiting(1, quick);
      await call('POST', '/enqueue', { json: { id: 'soon', queue, timeout: 5, run_at: new Date(Date.now() + 400).toISOString() }, baseUrl: quick.url });
      const started = Date.now();
      const res = await pending;
      expect(res.status).to.equal(200);
      expect(res.body[0].id).to.equal('soon');
      expect(Date.now() - started).to.be.below(WAKE_BOUND_MS);
    } finally {
      await quick.close();
    }
  });

  it('a job enqueued for a waiting request reaches it leased (attempt 1, a run_id that completes it), once', async () => {
    const queue = uniqueQueue();
    const pending = waitNext(queue, 20, 5);
    await waiting(1);
    await enqueue({ id: 'a', queue, timeout: 30, payload: { n: 1 }, state: { step: 2 } });
    const res = await pending;
    expect(res.status).to.equal(200);
    expect(res.body).to.have.length(1);
    expect(res.body[0]).to.include({ id: 'a', queue, attempt: 1, timeout: 30 });
    expect(res.body[0].payload).to.deep.equal({ n: 1 });
    expect(res.body[0].state).to.deep.equal({ step: 2 });
    expect((await next(queue)).status, 'leased, so not given again').to.equal(204);
    const done = await call('DELETE', '/v1/complete', { query: { queue, job_id: 'a', run_id: res.body[0].run_id }, baseUrl: at() });
    expect(done.status).to.equal(200);
  });

  it("answers the waiting request with its job before the producer's 202", async () => {
    // The job that waited longest reaches its worker first (issue 16 item 2). Each order is
    // read from which answer reaches the client first, over a connection of its own.
    const orders: string[] = [];
    for (let i = 0; i < 10; i++) {
      const queue = uniqueQueue();
      const order: string[] = [];
      const pending = waitNext(queue, 20).then((r) => (order.push('worker'), r));
      await eventually(async () => server.sleepingPolls >= 1, 5_000, 10);
      const produced = enqueue({ id: 'a', queue, timeout: 30 }).then((r) => (order.push('producer'), r));
      const [polled, enqueued] = await Promise.all([pending, produced]);
      expect([polled.status, enqueued.status]).to.deep.equal([200, 202]);
      orders.push(order.join(' then '));
    }
    expect(orders).to.deep.equal(Array(10).fill('worker then producer'));
  });

  it('keeps FIFO for a waiting request: an older job that became due goes before a new one', async () => {
    const queue = uniqueQueue();
    const pending = waitNext(queue, 20);
    await waiting(1);
    // Due in 300 ms: its notification comes too early, and the next re-check is a minute away.
    const due = Date.now() + 300;
    await enqueue({ id: 'older', queue, timeout: 30, run_at: new Date(due).toISOString() });
    await sleep(Math.max(0, due + 150 - Date.now())); // the time that makes it due, not a synchronisation
    await enqueue({ id: 'newer', queue, timeout: 30 });
    const res = await pending;
    expect(res.body.map((j: { id: string }) => j.id)).to.deep.equal(['older']);
    expect((await drain(queue)).map((j: { id: string }) => j.id)).to.deep.equal(['newer']);
  });

  it('hands one job to exactly one of several waiters', async () => {
    const queue = uniqueQueue();
    const waiters = Array.from({ length: 5 }, () => waitNext(queue, 2));
    await waiting(5);
    await enqueue({ id: 'only', queue, timeout: 30 });
    const results = await Promise.all(waiters);
    expect(results.filter((r) => r.status === 200)).to.have.length(1);
    expect(results.filter((r) => r.status === 204)).to.have.length(4);
  });

  it('serves several waiting workers as jobs arrive one by one', async () => {
    const queue = uniqueQueue();
    const waiters = Array.from({ length: 4 }, () => waitNext(queue, 20));
    await waiting(4);
    const started = Date.now();
    for (const id of ['a', 'b', 'c', 'd']) await enqueue({ id, queue, timeout: 30 });
    const results = await Promise.all(waiters);
    expect(Date.now() - started).to.be.below(WAKE_BOUND_MS);
    expect(results.map((r) => r.status)).to.deep.equal([200, 200, 200, 200]);
    expect(results.map((r) => r.body[0].id).sort()).to.deep.equal(['a', 'b', 'c', 'd']);
  });

  it('ends the wait of a client that disconnects, leaving the job for others', async () => {
    const queue = uniqueQueue();
    const controller = new AbortController();
    const url = new URL('/v1/next', at());
    url.search = new URLSearchParams({ queue, wait: '30' }).toString();
    const aborted = fetch(url, { signal: controller.signal }).catch((err: Error) => err);
    await waiting(1);
    controller.abort();
    expect(await aborted).to.be.instanceOf(Error);
    await eventually(async () => server.waitingPolls === 0, 5_000, 10);
    await enqueue({ id: 'a', queue, timeout: 30 });
    expect((await drain(queue)).map((j) => j.id)).to.deep.equal(['a']);
  });

  it('never leaves a job leased to a client that hung up as it arrived', async () => {
    const queues = Array.from({ length: 10 }, () => uniqueQueue());
    const { port } = new URL(at());
    for (const queue of queues) {
      const socket = connect(Number(port), '127.0.0.1');
      await new Promise<void>((resolve) => socket.on('connect', resolve));
      socket.write(`GET /v1/next?queue=${encodeURIComponent(queue)}&wait=5 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
      await waiting(1);
      // The client hangs up just as a job arrives for it.
      socket.destroy();
      await enqueue({ id: 'j', queue, timeout: 300 });
      await eventually(async () => server.waitingPolls === 0, 5_000, 10);
    }
    for (const queue of queues) {
      const jobs = await drain(queue);
      expect(jobs.map((j) => [j.id, j.attempt]), queue).to.deep.equal([['j', 1]]);
    }
  });

  it('rejects a wait outside 0..60 seconds', async () => {
    for (const wait of [-1, 61, 'soon']) {
      const res = await call('GET', '/v1/next', { query: { queue: 'q', wait }, baseUrl: at() });
      expect(res.status, `wait=${wait}`).to.equal(400);
    }
  });

  it('with wait=0 answers at once, as the seed does', async () => {
    const started = Date.now();
    expect((await waitNext(uniqueQueue(), 0)).status).to.equal(204);
    expect(Date.now() - started).to.be.below(1000);
  });

  it('answers waiting requests with 204 when the server shuts down', async () => {
    const closing = await startRelay();
    const pending = waitNext(uniqueQueue(), 30, 1, closing.url);
    await waiting(1, closing);
    const started = Date.now();
    await closing.close();
    expect((await pending).status).to.equal(204);
    expect(Date.now() - started).to.be.below(5000);
  });

  it('is served on the /next alias too', async () => {
    const queue = uniqueQueue();
    const pending = call('GET', '/next', { query: { queue, wait: 20 }, baseUrl: at() });
    await waiting(1);
    await enqueue({ id: 'a', queue, timeout: 5 });
    expect((await pending).status).to.equal(200);
    expect((await next(queue)).status).to.equal(204);
  });
});
