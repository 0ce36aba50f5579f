import { expect } from 'chai';
import type { RelayServer } from '../../server/src/index.js';
import { call, startRelay, uniqueQueue } from '../helpers/relay.js';

/*
 * The limits that are flags (issue 12 item 9): beyond each, the status the README documents,
 * and nothing stored.
 */

describe('limits set by flags', () => {
  let server: RelayServer;
  const at = (method: string, path: string, options: Parameters<typeof call>[2] = {}) => call(method, path, { ...options, baseUrl: server.url });
  const leaseAll = async (queue: string) => {
    const res = await at('GET', '/v1/next', { query: { queue, num_jobs: 100 } });
    return res.status === 200 ? (res.body as Array<{ id: string; run_id: string }>) : [];
  };
  afterEach(() => server?.close());

  it('--max-batch-size: a batch over it is a 400 that stores or completes nothing; at it, accepted', async () => {
    server = await startRelay({ maxBatchSize: 3 });
    const queue = uniqueQueue('batch');
    const jobs = ['a', 'b', 'c', 'd'].map((id) => ({ id, queue, timeout: 30 }));
    const over = await at('POST', '/enqueue/batch', { json: jobs });
    expect(over.status, over.text).to.equal(400);
    expect(over.body.errors).to.deep.equal([{ path: '/body', message: 'must NOT have more than 3 items' }]);
    expect(await leaseAll(queue)).to.deep.equal([]);
    expect((await at('POST', '/enqueue/batch', { json: jobs.slice(0, 3) })).status).to.equal(202);
    const leased = await leaseAll(queue);
    expect(leased.map((j) => j.id)).to.deep.equal(['a', 'b', 'c']);
    const refs = [...leased.map((j) => ({ queue, job_id: j.id, run_id: j.run_id })), { queue, job_id: 'z' }];
    const tooMany = await at('POST', '/v1/complete/batch', { json: refs });
    expect(tooMany.status, tooMany.text).to.equal(400);
    // Still in flight: a heartbeat finds each.
    for (const job of leased) expect((await at('PATCH', '/v1/heartbeat', { query: { queue, job_id: job.id, run_id: job.run_id } })).status).to.equal(202);
    const done = await at('POST', '/v1/complete/batch', { json: refs.slice(0, 3) });
    expect(done.status).to.equal(200);
    expect(done.body.completed).to.have.length(3);
  });

  it('--max-key-length: a queue and id over it together (bytes of UTF-8) are a 400 wherever they are named, and nothing is stored', async () => {
    server = await startRelay({ maxKeyBytes: 20 });
    const queue = `k-${uniqueQueue('')}`.slice(0, 10); // 10 bytes
    expect(Buffer.byteLength(queue)).to.equal(10);
    const fits = { id: 'é'.repeat(5), queue, timeout: 30 }; // 10 + 10 bytes
    const over = { id: `${'é'.repeat(5)}x`, queue, timeout: 30 }; // 21 bytes
    const single = await at('POST', '/enqueue', { json: over });
    expect(single.status, single.text).to.equal(400);
    expect(single.body.errors[0].path).to.equal('/body/id');
    const batch = await at('POST', '/enqueue/batch', { json: [fits, over] });
    expect(batch.status, batch.text).to.equal(400);
    expect(batch.body.errors[0].path).to.equal('/body/1/id');
    expect(await leaseAll(queue)).to.deep.equal([]);
    // In the query too: a queue alone over it, or with a job_id.
    expect((await at('GET', '/v1/next', { query: { queue: 'q'.repeat(21) } })).status).to.equal(400);
    expect((await at('DELETE', '/v1/complete', { query: { queue, job_id: over.id } })).status).to.equal(400);
    expect((await at('GET', '/v1/failed', { query: { queue, job_id: over.id } })).status).to.equal(400);
    expect((await at('POST', '/v1/complete/batch', { json: [{ queue, job_id: over.id }] })).status).to.equal(400);
    // At the limit, accepted.
    expect((await at('POST', '/enqueue', { json: fits })).status).to.equal(202);
    expect((await leaseAll(queue)).map((j) => j.id)).to.deep.equal([fits.id]);
  });

  it('--max-page-size: a listing answers at most that many, whatever limit asks; over the contract\'s maximum, 400', async () => {
    server = await startRelay({ maxPageSize: 2 });
    const queue = uniqueQueue('page');
    await at('POST', '/enqueue/batch', { json: ['a', 'b', 'c'].map((id) => ({ id, queue, timeout: 30 })) });
    for (const job of await leaseAll(queue)) {
      const res = await at('POST', '/v1/fail', { query: { queue, job_id: job.id, run_id: job.run_id }, json: { error: 'no' } });
      expect(res.body.outcome).to.equal('failed');
    }
    expect((await at('GET', '/v1/failed', { query: { queue, limit: 3 } })).body).to.have.length(2);
    expect((await at('GET', '/v1/failed', { query: { queue } })).body).to.have.length(2);
    expect((await at('GET', '/v1/failed', { query: { queue, limit: 1 } })).body).to.have.length(1);
    expect((await at('GET', '/v1/failed', { query: { queue, limit: 1001 } })).status).to.equal(400);
    // The job listing pages by the same limit, and its cursor still reaches every job.
    const first = await at('GET', '/v1/jobs', { query: { queue, status: 'failed', limit: 3 } });
    expect(first.body.jobs).to.have.length(2);
    const second = await at('GET', '/v1/jobs', { query: { queue, status: 'failed', limit: 3, cursor: first.body.next_cursor } });
    expect([...first.body.jobs, ...second.body.jobs].map((j: any) => j.id).sort()).to.deep.equal(['a', 'b', 'c']);
    expect((await at('GET', '/v1/jobs', { query: { queue, status: 'failed', limit: 1001 } })).status).to.equal(400);
  });
});
