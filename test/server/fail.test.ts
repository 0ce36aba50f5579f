import { expect } from 'chai';
import { call, complete, drain, enqueue, enqueueBatch, eventually, heartbeat, next, sleep, uniqueQueue } from '../helpers/relay.js';

const fail = (queue: string, job_id: string, body?: object, run_id?: string) =>
  call('POST', '/v1/fail', { query: { queue, job_id, run_id }, ...(body ? { json: body } : {}) });
const failed = async (queue: string) => (await call('GET', '/v1/failed', { query: { queue } })).body as any[];

describe('POST /v1/fail', () => {
  it('puts the job back after retry_in, keeping its state, and counts a retry', async () => {
    const queue = uniqueQueue();
    await enqueue({ id: 'a', queue, timeout: 30, max_retries: 1 });
    await drain(queue);
    await heartbeat(queue, 'a', { state: 'cp' });
    const res = await fail(queue, 'a', { error: 'smtp down', retry_in: 1 });
    expect(res.status).to.equal(202);
    expect(res.body.outcome).to.equal('retrying');
    const runAt = Date.parse(res.body.run_at);
    expect(runAt).to.be.greaterThan(Date.now() + 500);
    expect((await next(queue)).status).to.equal(204);
    const job = await eventually(async () => (await drain(queue))[0], 3000);
    expect(job).to.include({ attempt: 2, state: 'cp' });
    // That was the last retry: the next failure moves it to the failed jobs with the error.
    const last = await fail(queue, 'a', { error: 'smtp still down' });
    expect(last.body).to.deep.equal({ outcome: 'failed' });
    const [record] = await failed(queue);
    expect(record).to.include({ id: 'a', reason: 'smtp still down', attempts: 2, state: 'cp' });
    expect((await next(queue)).status).to.equal(204);
  });

  it('backs off exponentially by default', async () => {
    const queue = uniqueQueue();
    await enqueue({ id: 'a', queue, timeout: 30, max_retries: -1 });
    await drain(queue);
    const first = await fail(queue, 'a');
    const delay1 = Date.parse(first.body.run_at) - Date.now();
    expect(delay1).to.be.within(0, 1100); // 2^0 s
    const job = await eventually(async () => (await drain(queue))[0], 3000);
    expect(job.attempt).to.equal(2);
    const second = await fail(queue, 'a');
    const delay2 = Date.parse(second.body.run_at) - Date.now();
    expect(delay2).to.be.within(1000, 2100); // 2^1 s
  });

  it('answers 404 for a job that is not in flight, changing nothing', async () => {
    const queue = uniqueQueue();
    expect((await fail(queue, 'missing')).status).to.equal(404);
    await enqueue({ id: 'w', queue, timeout: 5 });
    expect((await fail(queue, 'w', { error: 'x' })).status).to.equal(404);
    expect((await drain(queue))[0].attempt).to.equal(1);
    expect(await failed(queue)).to.be.empty;
  });

  it('rejects a malformed body', async () => {
    const res = await fail('q', 'a', { error: 1, retry_in: -5 });
    expect(res.status).to.equal(400);
    // Validation stops at the first problem (a bad request costs no more than a good one).
    expect(res.body.errors.map((e: { path: string }) => e.path)).to.satisfy((paths: string[]) => paths.some((p) => ['/body/error', '/body/retry_in'].includes(p)));
  });
});

describe('lease fencing with run_id', () => {
  it('a stale run_id changes nothing after the job was delivered again', async () => {
    const queue = uniqueQueue();
    await enqueue({ id: 'a', queue, timeout: 1, max_retries: -1 });
    const stale = (await drain(queue))[0];
    const current = await eventually(async () => (await drain(queue))[0], 4000);
    expect(current.run_id).not.to.equal(stale.run_id);
    await heartbeat(queue, 'a', { state: 'mine', run_id: current.run_id });

    expect((await heartbeat(queue, 'a', { state: 'stale', run_id: stale.run_id })).status).to.equal(404);
    expect((await fail(queue, 'a', { error: 'stale' }, stale.run_id)).status).to.equal(404);
    expect((await call('POST', '/reschedule', { json: { id: 'a', queue, timeout: 5, run_id: stale.run_id } })).status).to.equal(404);
    expect((await complete(queue, 'a', stale.run_id)).status).to.equal(404);

    // The current holder's calls still work, and saw none of the stale ones.
    expect((await heartbeat(queue, 'a', { run_id: current.run_id })).status).to.equal(202);
    expect((await fail(queue, 'a', { retry_in: 0 }, current.run_id)).status).to.equal(202);
    const third = (await drain(queue))[0];
    expect(third).to.include({ state: 'mine', attempt: 3 });
    expect((await complete(queue, 'a', third.run_id)).status).to.equal(200);
  });
});

describe('POST /v1/complete/batch', () => {
  it('completes the listed jobs in one call and reports the ones not found', async () => {
    const queue = uniqueQueue();
    await enqueueBatch(['a', 'b', 'c'].map((id) => ({ id, queue, timeout: 30 })));
    const jobs = await drain(queue);
    const refs = [
      { queue, job_id: 'a', run_id: jobs[0].run_id },
      { queue, job_id: 'b' },
      { queue, job_id: 'c', run_id: 'stale' },
      { queue, job_id: 'missing' },
      { queue, job_id: 'a' },
    ];
    const res = await call('POST', '/v1/complete/batch', { json: refs });
    expect(res.status).to.equal(200);
    expect(res.body.completed).to.deep.equal([refs[0], refs[1]]);
    expect(res.body.not_found).to.deep.equal([refs[2], refs[3], refs[4]]);
    expect((await complete(queue, 'a')).status).to.equal(404);
    expect((await complete(queue, 'c')).status).to.equal(200);
  });

  it('accepts an empty list and refuses more than 1000', async () => {
    expect((await call('POST', '/v1/complete/batch', { json: [] })).body).to.deep.equal({ completed: [], not_found: [] });
    const many = Array.from({ length: 1001 }, (_, i) => ({ queue: 'q', job_id: String(i) }));
    expect((await call('POST', '/v1/complete/batch', { json: many })).status).to.equal(400);
  });
});

describe('GET /v1/failed', () => {
  it('lists failures newest first, filtered by job and limited', async () => {
    const queue = uniqueQueue();
    await enqueueBatch(['a', 'b', 'c'].map((id) => ({ id, queue, timeout: 30 })));
    for (const job of await drain(queue)) {
      await fail(queue, job.id, { error: `boom ${job.id}` });
      await sleep(5);
    }
    expect((await failed(queue)).map((f) => f.id)).to.deep.equal(['c', 'b', 'a']);
    const one = await call('GET', '/v1/failed', { query: { queue, job_id: 'b' } });
    expect(one.body.map((f: { reason: string }) => f.reason)).to.deep.equal(['boom b']);
    const limited = await call('GET', '/v1/failed', { query: { queue, limit: 2 } });
    expect(limited.body).to.have.length(2);
  });
});
