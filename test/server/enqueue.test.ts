import { expect } from 'chai';
import { call, drain, enqueue, enqueueBatch, next, uniqueQueue } from '../helpers/relay.js';

describe('POST /enqueue', () => {
  it('stores a job that next then hands out with every field', async () => {
    const queue = uniqueQueue();
    const runAt = new Date(Date.now() - 1000).toISOString();
    const res = await enqueue({ id: 'a', queue, timeout: 30, max_retries: 2, payload: { n: 1 }, state: { s: 2 }, run_at: runAt });
    expect(res.status).to.equal(202);
    const [job, ...rest] = await drain(queue);
    expect(rest).to.be.empty;
    expect(job).to.include({ id: 'a', queue, timeout: 30, max_retries: 2, attempt: 1, run_at: runAt });
    expect(job.payload).to.deep.equal({ n: 1 });
    expect(job.state).to.deep.equal({ s: 2 });
    expect(job.run_id).to.be.a('string');
  });

  it('defaults max_retries to 0, payload to null and leaves state out', async () => {
    const queue = uniqueQueue();
    await enqueue({ id: 'a', queue, timeout: 5 });
    const [job] = await drain(queue);
    expect(job.max_retries).to.equal(0);
    expect(job.payload).to.equal(null);
    expect(job).not.to.have.property('state');
  });

  it('answers 409 for an existing (queue, id), waiting or in flight, and keeps the first job', async () => {
    const queue = uniqueQueue();
    expect((await enqueue({ id: 'a', queue, timeout: 5, payload: 1 })).status).to.equal(202);
    const waiting = await enqueue({ id: 'a', queue, timeout: 5, payload: 2 });
    expect(waiting.status).to.equal(409);
    expect(waiting.headers.get('content-type')).to.match(/^application\/problem\+json/);
    expect(waiting.body).to.include({ status: 409, title: 'Conflict' });
    const [job] = await drain(queue);
    expect(job.payload).to.equal(1);
    expect((await enqueue({ id: 'a', queue, timeout: 5, payload: 3 })).status).to.equal(409);
  });

  it('accepts the same id in two queues', async () => {
    const [q1, q2] = [uniqueQueue(), uniqueQueue()];
    expect((await enqueue({ id: 'same', queue: q1, timeout: 5 })).status).to.equal(202);
    expect((await enqueue({ id: 'same', queue: q2, timeout: 5 })).status).to.equal(202);
    expect(await drain(q1)).to.have.length(1);
    expect(await drain(q2)).to.have.length(1);
  });

  it('returns every kind of JSON payload verbatim', async () => {
    const queue = uniqueQueue();
    const payloads = ['RAW JSON', 42, 3.5, true, false, null, [1, 'two', { three: [3] }], { nested: { a: [null, { b: 'ü' }] } }, ''];
    await enqueueBatch(payloads.map((payload, i) => ({ id: String(i), queue, timeout: 5, payload })));
    const jobs = await drain(queue);
    expect(jobs.map((j) => j.payload)).to.deep.equal(payloads);
  });

  it('returns a 1 MiB payload intact', async () => {
    const queue = uniqueQueue();
    const payload = { blob: 'x'.repeat(1024 * 1024), list: Array.from({ length: 1000 }, (_, i) => ({ i, s: `item-${i}` })) };
    expect((await enqueue({ id: 'big', queue, timeout: 5, payload })).status).to.equal(202);
    const [job] = await drain(queue);
    expect(job.payload).to.deep.equal(payload);
  });
});

describe('POST /enqueue/batch', () => {
  it('stores every job, in order', async () => {
    const queue = uniqueQueue();
    const jobs = Array.from({ length: 50 }, (_, i) => ({ id: `j${i}`, queue, timeout: 5, payload: i }));
    expect((await enqueueBatch(jobs)).status).to.equal(202);
    expect((await drain(queue)).map((j) => j.id)).to.deep.equal(jobs.map((j) => j.id));
  });

  it('drops jobs that already exist or repeat inside the batch; the first occurrence wins', async () => {
    const queue = uniqueQueue();
    await enqueue({ id: 'old', queue, timeout: 5, payload: 'old' });
    const res = await enqueueBatch([
      { id: 'a', queue, timeout: 5, payload: 'a1' },
      { id: 'old', queue, timeout: 5, payload: 'old2' },
      { id: 'b', queue, timeout: 5, payload: 'b' },
      { id: 'a', queue, timeout: 5, payload: 'a2' },
    ]);
    expect(res.status).to.equal(202);
    const jobs = await drain(queue);
    expect(jobs.map((j) => [j.id, j.payload])).to.deep.equal([
      ['old', 'old'],
      ['a', 'a1'],
      ['b', 'b'],
    ]);
  });

  it('accepts an empty array', async () => {
    expect((await enqueueBatch([])).status).to.equal(202);
  });

  it('stores nothing when one element is malformed', async () => {
    const queue = uniqueQueue();
    const res = await call('POST', '/enqueue/batch', {
      json: [
        { id: 'a', queue, timeout: 5 },
        { id: 'b', queue, timeout: -1 },
        { id: 'c', queue, timeout: 5 },
      ],
    });
    expect(res.status).to.equal(400);
    expect(res.body.errors).to.deep.include({ path: '/body/1/timeout', message: 'must be >= 0' });
    expect((await next(queue)).status).to.equal(204);
  });

  it('stores jobs for several queues in one request', async () => {
    const [q1, q2] = [uniqueQueue(), uniqueQueue()];
    await enqueueBatch([
      { id: '1', queue: q1, timeout: 5 },
      { id: '1', queue: q2, timeout: 5 },
    ]);
    expect(await drain(q1)).to.have.length(1);
    expect(await drain(q2)).to.have.length(1);
  });
});
