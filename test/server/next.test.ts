import { expect } from 'chai';
import { call, drain, enqueue, enqueueBatch, eventually, next, sleep, uniqueQueue } from '../helpers/relay.js';

describe('GET /v1/next', () => {
  it('answers 204 with no body on an empty queue', async () => {
    const res = await next(uniqueQueue());
    expect(res.status).to.equal(204);
    expect(res.text).to.equal('');
  });

  it('hands out jobs enqueued without run_at first in, first out', async () => {
    const queue = uniqueQueue();
    for (const id of ['c', 'a', 'b']) await enqueue({ id, queue, timeout: 5 });
    await enqueueBatch([
      { id: 'z', queue, timeout: 5 },
      { id: 'y', queue, timeout: 5 },
    ]);
    const ids: string[] = [];
    for (;;) {
      const res = await next(queue);
      if (res.status === 204) break;
      ids.push(res.body[0].id);
    }
    expect(ids).to.deep.equal(['c', 'a', 'b', 'z', 'y']);
  });

  it('orders by run_at, oldest first, then by enqueue order', async () => {
    const queue = uniqueQueue();
    const t = (s: number) => new Date(Date.now() - s * 1000).toISOString();
    await enqueueBatch([
      { id: 'newest', queue, timeout: 5, run_at: t(1) },
      { id: 'oldest', queue, timeout: 5, run_at: t(30) },
      { id: 'middle-1', queue, timeout: 5, run_at: t(10) },
      { id: 'middle-2', queue, timeout: 5, run_at: t(10) },
    ]);
    expect((await drain(queue)).map((j) => j.id)).to.deep.equal(['oldest', 'middle-1', 'middle-2', 'newest']);
  });

  it('keeps a job with a future run_at invisible until then', async () => {
    const queue = uniqueQueue();
    const runAt = new Date(Date.now() + 1500);
    await enqueue({ id: 'later', queue, timeout: 5, run_at: runAt.toISOString() });
    await enqueue({ id: 'now', queue, timeout: 5 });
    expect((await drain(queue)).map((j) => j.id)).to.deep.equal(['now']);
    const job = await eventually(async () => (await drain(queue))[0], 5000);
    expect(Date.now()).to.be.at.least(runAt.getTime());
    expect(job.id).to.equal('later');
  });

  it('returns at most num_jobs, and 1 by default', async () => {
    const queue = uniqueQueue();
    await enqueueBatch(Array.from({ length: 10 }, (_, i) => ({ id: String(i), queue, timeout: 5 })));
    expect((await next(queue)).body).to.have.length(1);
    expect((await next(queue, 4)).body).to.have.length(4);
    expect((await next(queue, 1000)).body).to.have.length(5);
    expect((await next(queue, 1000)).status).to.equal(204);
  });

  it('num_jobs means "up to": a count over the maximum gets the maximum, 0 gets a 204 and leases nothing', async () => {
    const queue = uniqueQueue();
    await call('POST', '/enqueue/batch', { json: Array.from({ length: 1100 }, (_, i) => ({ id: String(i), queue, timeout: 30 })) });
    const none = await call('GET', '/v1/next', { query: { queue, num_jobs: 0, wait: 5 } });
    expect(none.status).to.equal(204);
    // An existing relay consumer asks for as many jobs as it has free workers.
    const first = await call('GET', '/v1/next', { query: { queue, num_jobs: 1100 } });
    expect(first.status).to.equal(200);
    expect(first.body).to.have.length(1000);
    const rest = await call('GET', '/v1/next', { query: { queue, num_jobs: 2147483647 } });
    expect(rest.body).to.have.length(100);
  });

  it('refuses a num_jobs or wait that is not a finite number in range, naming it, and leases nothing', async () => {
    const queue = uniqueQueue();
    await enqueue({ id: 'a', queue, timeout: 5 });
    const bad: Array<[string, string]> = [
      ['num_jobs', '-1'], ['num_jobs', '2.5'], ['num_jobs', 'abc'], ['num_jobs', '2147483648'],
      ['num_jobs', 'Infinity'], ['num_jobs', '-Infinity'], ['num_jobs', '1e309'], ['num_jobs', 'NaN'],
      ['wait', 'Infinity'], ['wait', '1e309'], ['wait', '61'], ['wait', '-1'], ['wait', 'NaN'],
    ];
    for (const [name, value] of bad) {
      const started = Date.now();
      const res = await call('GET', '/v1/next', { query: { queue, [name]: value } });
      expect(res.status, `${name}=${value}`).to.equal(400);
      expect(res.headers.get('content-type')).to.match(/^application\/problem\+json/);
      expect(res.body.errors[0].path, `${name}=${value}`).to.equal(`/query/${name}`);
      expect(Date.now() - started, `${name}=${value} answered at once`).to.be.below(5_000);
    }
    for (const value of ['Infinity', '-Infinity', '1e309']) {
      const res = await call('GET', '/v1/failed', { query: { queue, limit: value } });
      expect(res.status, `limit=${value}`).to.equal(400);
      expect(res.body.errors[0].path).to.equal('/query/limit');
    }
    expect(await drain(queue)).to.have.length(1);
  });

  it('requires the queue parameter and refuses unknown parameters', async () => {
    expect((await call('GET', '/v1/next')).status).to.equal(400);
    const res = await call('GET', '/v1/next', { query: { queue: 'x', limit: 3 } });
    expect(res.status).to.equal(400);
    expect(res.body.detail).to.be.a('string');
  });

  it('does not hand out a job again while its lease runs', async () => {
    const queue = uniqueQueue();
    await enqueue({ id: 'a', queue, timeout: 30 });
    expect(await drain(queue)).to.have.length(1);
    await sleep(300); // several reaper intervals
    expect((await next(queue)).status).to.equal(204);
  });

  it('keeps queues apart', async () => {
    const [q1, q2] = [uniqueQueue(), uniqueQueue()];
    await enqueue({ id: 'a', queue: q1, timeout: 5 });
    expect((await next(q2)).status).to.equal(204);
    expect((await drain(q1)).map((j) => j.id)).to.deep.equal(['a']);
  });

  it('gives each delivery a new run_id and counts attempts', async () => {
    const queue = uniqueQueue();
    await enqueue({ id: 'a', queue, timeout: 0, max_retries: 2 });
    const first = (await drain(queue))[0];
    const second = await eventually(async () => (await drain(queue))[0]);
    expect(first.attempt).to.equal(1);
    expect(second.attempt).to.equal(2);
    expect(second.run_id).not.to.equal(first.run_id);
  });
});
