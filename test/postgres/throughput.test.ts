import { expect } from 'chai';
import type { RelayServer } from '../../server/src/index.js';
import { call, enqueue, enqueueBatch, next, relay, startRelay, uniqueQueue } from '../helpers/relay.js';

/*
 * Throughput with two servers on one PostgreSQL, each doing part of the work (and a job
 * leased on one completed through the other): after both flush, either server's API shows the
 * sum, the same answer from both, which no single server's /metrics counters can give.
 */

describe('throughput across servers on one PostgreSQL', function () {
  this.timeout(30_000);
  let a: RelayServer;
  let b: RelayServer;
  before(async () => {
    // Flushed on demand in the test; the interval would flush too, at any moment.
    [a, b] = await Promise.all([startRelay({ throughputFlushSeconds: 60 }), startRelay({ throughputFlushSeconds: 60 })]);
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  it('the API of either server shows the sum of what both counted', async () => {
    const queue = uniqueQueue('tput2');
    const other = uniqueQueue('tput2-other');
    for (const id of ['j1', 'j2', 'j3']) expect((await enqueue({ id, queue, timeout: 30 }, a.url)).status).to.equal(202);
    expect((await enqueueBatch([{ id: 'j4', queue, timeout: 30 }, { id: 'j5', queue, timeout: 30 }, { id: 'o1', queue: other, timeout: 30 }], b.url)).status).to.equal(202);
    const onA: any[] = (await next(queue, 2, a.url)).body;
    const onB: any[] = (await next(queue, 3, b.url)).body;
    expect([...onA, ...onB].map((j) => j.id)).to.deep.equal(['j1', 'j2', 'j3', 'j4', 'j5']);
    // j1, leased on a, is completed through b; j3, leased on b, through a.
    expect((await call('DELETE', '/v1/complete', { query: { queue, job_id: 'j1', run_id: onA[0].run_id }, baseUrl: b.url })).status).to.equal(200);
    expect((await call('DELETE', '/v1/complete', { query: { queue, job_id: 'j3', run_id: onB[0].run_id }, baseUrl: a.url })).status).to.equal(200);
    expect((await call('POST', '/v1/complete/batch', { json: [{ queue, job_id: 'j4', run_id: onB[1].run_id }], baseUrl: b.url })).status).to.equal(200);
    expect((await call('POST', '/v1/fail', { query: { queue, job_id: 'j2', run_id: onA[1].run_id }, json: { error: 'no' }, baseUrl: a.url })).body.outcome).to.equal('failed');
    expect((await call('POST', '/v1/fail', { query: { queue, job_id: 'j5', run_id: onB[2].run_id }, json: { error: 'no' }, baseUrl: b.url })).body.outcome).to.equal('failed');

    // Each server alone holds part of it.
    await a.flushThroughput();
    const partial = (await call('GET', `/v1/queues/${queue}/throughput`, { baseUrl: b.url })).body;
    expect({ enqueued: partial.enqueued, completed: partial.completed, failed: partial.failed }).to.deep.equal({ enqueued: 3, completed: 1, failed: 1 });

    await Promise.all([a.flushThroughput(), b.flushThroughput()]);
    const want = { enqueued: 5, completed: 3, failed: 2 };
    const [fromA, fromB, fromShared] = await Promise.all([a, b, relay()].map(async (s) => (await call('GET', `/v1/queues/${queue}/throughput`, { baseUrl: s.url })).body));
    expect({ enqueued: fromA.enqueued, completed: fromA.completed, failed: fromA.failed }).to.deep.equal(want);
    expect(fromB).to.deep.equal(fromA);
    expect(fromShared).to.deep.equal(fromA);

    const listed = async (s: RelayServer) => ((await call('GET', '/v1/throughput', { baseUrl: s.url })).body as any[]).filter((t) => t.queue === queue || t.queue === other);
    const [listA, listB] = await Promise.all([listed(a), listed(b)]);
    expect(listA.map((t) => [t.queue, t.enqueued, t.completed, t.failed])).to.deep.equal([[queue, 5, 3, 2], [other, 1, 0, 0]].sort((x, y) => (x[0]! < y[0]! ? -1 : 1)));
    expect(listB).to.deep.equal(listA);
  });
});
