import { expect } from 'chai';
import type { RelayServer } from '../../server/src/index.js';
import { call, complete, enqueueBatch, eventually, next, startRelay, uniqueQueue } from '../helpers/relay.js';

/*
 * The operations API with several servers on one PostgreSQL: a pause holds on every server
 * and across restarts, a resume wakes polls waiting on another server, and the counts stay
 * exact while two reapers fold them at once.
 */

const queuePath = (queue: string) => `/v1/queues/${encodeURIComponent(queue)}`;

describe('operations across servers on one PostgreSQL', function () {
  this.timeout(30_000);
  let a: RelayServer;
  let b: RelayServer;
  // Polls re-check once a minute: only a working wake-up releases one within the test's bound.
  before(async () => {
    [a, b] = await Promise.all([startRelay({ pollRecheckMs: 60_000 }), startRelay({ pollRecheckMs: 60_000, reapInterval: 0.05 })]);
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  it('a pause on one server holds on the other; a resume there releases a poll waiting here at once', async () => {
    const queue = uniqueQueue();
    await call('POST', `${queuePath(queue)}/pause`, { baseUrl: a.url });
    await enqueueBatch([{ id: 'x', queue, timeout: 30 }], b.url);
    expect((await next(queue, 1, b.url)).status).to.equal(204);
    const poll = call('GET', '/v1/next', { query: { queue, wait: 30 }, baseUrl: b.url });
    await eventually(async () => b.waitingPolls > 0);
    const started = Date.now();
    await call('POST', `${queuePath(queue)}/resume`, { baseUrl: a.url });
    const answer = await poll;
    expect(answer.status).to.equal(200);
    expect(Date.now() - started).to.be.below(5_000);
  });

  it('a pause survives a restart of the server that set it', async () => {
    const queue = uniqueQueue();
    const first = await startRelay();
    await call('POST', `${queuePath(queue)}/pause`, { baseUrl: first.url });
    await first.close();
    const second = await startRelay();
    try {
      await enqueueBatch([{ id: 'x', queue, timeout: 30 }], second.url);
      expect((await next(queue, 1, second.url)).status).to.equal(204);
      expect((await call('GET', queuePath(queue), { baseUrl: second.url })).body).to.include({ paused: true, waiting: 1 });
    } finally {
      await second.close();
    }
  });

  it('counts stay exact under concurrent work on both servers while both reapers fold them', async () => {
    const queue = uniqueQueue();
    const batches = Array.from({ length: 20 }, (_, k) => Array.from({ length: 50 }, (_, i) => ({ id: `${k}-${i}`, queue, timeout: 30 })));
    await Promise.all(batches.map((jobs, k) => enqueueBatch(jobs, (k % 2 ? a : b).url)));
    const leased = (await Promise.all([next(queue, 200, a.url), next(queue, 200, b.url)])).flatMap((r) => r.body);
    expect(leased).to.have.length(400);
    await Promise.all(leased.slice(0, 150).map((j: any, i: number) => complete(queue, j.id, j.run_id, (i % 2 ? a : b).url)));
    const expected = { waiting: 600, scheduled: 0, in_flight: 250, failed: 0 };
    for (const server of [a, b]) expect((await call('GET', queuePath(queue), { baseUrl: server.url })).body).to.include(expected);
    // Once the reapers have folded every delta, the same.
    await new Promise((r) => setTimeout(r, 500));
    for (const server of [a, b]) expect((await call('GET', queuePath(queue), { baseUrl: server.url })).body).to.include(expected);
  });
});
