import { expect } from 'chai';
import { call, complete, drain, enqueue, eventually, heartbeat, next, sleep, uniqueQueue } from '../helpers/relay.js';

/** Sends an in-flight job straight back to its queue (an explicit failure, retry now) and leases it again. */
async function redeliver(queue: string, id: string) {
  const res = await call('POST', '/v1/fail', { query: { queue, job_id: id }, json: { retry_in: 0 } });
  expect(res.status).to.equal(202);
  return (await drain(queue))[0];
}

const failed = async (queue: string) => (await call('GET', '/v1/failed', { query: { queue } })).body as any[];

describe('PATCH /v1/heartbeat', () => {
  it('stores the body as state, returned by the next delivery', async () => {
    const queue = uniqueQueue();
    await enqueue({ id: 'a', queue, timeout: 30, max_retries: -1 });
    await drain(queue);
    const res = await heartbeat(queue, 'a', { state: { page: 7 } });
    expect(res.status).to.equal(202);
    expect((await redeliver(queue, 'a')).state).to.deep.equal({ page: 7 });
  });

  it('keeps the state when sent without a body, clears it with null', async () => {
    const queue = uniqueQueue();
    await enqueue({ id: 'a', queue, timeout: 30, max_retries: -1, state: { s: 1 } });
    await drain(queue);
    expect((await heartbeat(queue, 'a')).status).to.equal(202);
    expect((await redeliver(queue, 'a')).state).to.deep.equal({ s: 1 });
    expect((await heartbeat(queue, 'a', { state: null })).status).to.equal(202);
    expect(await redeliver(queue, 'a')).not.to.have.property('state');
  });

  it('renews the lease so the job is not handed out again', async () => {
    const queue = uniqueQueue();
    await enqueue({ id: 'a', queue, timeout: 1, max_retries: 1 });
    await drain(queue);
    // 2.5 lease lengths, with a heartbeat every half lease.
    for (let i = 0; i < 5; i++) {
      await sleep(500);
      expect((await heartbeat(queue, 'a')).status).to.equal(202);
      expect((await next(queue)).status).to.equal(204);
    }
    // Without heartbeats the lease runs out and the job comes back.
    const back = await eventually(async () => (await drain(queue))[0], 4000);
    expect(back.attempt).to.equal(2);
  });

  it('answers 404 for a job that does not exist or is not in flight', async () => {
    const queue = uniqueQueue();
    const missing = await heartbeat(queue, 'nope');
    expect(missing.status).to.equal(404);
    expect(missing.headers.get('content-type')).to.match(/^application\/problem\+json/);
    await enqueue({ id: 'waiting', queue, timeout: 5 });
    expect((await heartbeat(queue, 'waiting', { state: 1 })).status).to.equal(404);
    const [job] = await drain(queue);
    expect(job).not.to.have.property('state');
  });

  it('stores any JSON value as state: strings, numbers, arrays, false', async () => {
    const queue = uniqueQueue();
    await enqueue({ id: 'a', queue, timeout: 30, max_retries: -1 });
    await drain(queue);
    for (const state of ['text', 12.5, [1, [2]], false]) {
      expect((await heartbeat(queue, 'a', { state })).status).to.equal(202);
      expect((await redeliver(queue, 'a')).state).to.deep.equal(state);
    }
  });
});

describe('lease expiry', () => {
  it('with max_retries 0: the job fails on its first expiry and is kept with its state', async () => {
    const queue = uniqueQueue();
    await enqueue({ id: 'a', queue, timeout: 1, payload: { p: 1 } });
    await drain(queue);
    expect((await heartbeat(queue, 'a', { state: { last: 'checkpoint' } })).status).to.equal(202);
    const [record] = await eventually(async () => {
      const rows = await failed(queue);
      return rows.length ? rows : undefined;
    });
    expect(record).to.include({ id: 'a', queue, reason: 'lease expired', attempts: 1, max_retries: 0 });
    expect(record.state).to.deep.equal({ last: 'checkpoint' });
    expect(record.payload).to.deep.equal({ p: 1 });
    await sleep(300);
    expect((await next(queue)).status).to.equal(204);
    // The failed job no longer blocks its id.
    expect((await enqueue({ id: 'a', queue, timeout: 5 })).status).to.equal(202);
  });

  it('with max_retries 1: delivered twice, keeping state and run_at, then failed', async () => {
    const queue = uniqueQueue();
    const runAt = new Date(Date.now() - 60_000).toISOString();
    await enqueue({ id: 'a', queue, timeout: 1, max_retries: 1, run_at: runAt });
    const first = (await drain(queue))[0];
    expect((await heartbeat(queue, 'a', { state: 'half done' })).status).to.equal(202);
    const second = await eventually(async () => (await drain(queue))[0]);
    expect(second).to.include({ attempt: 2, state: 'half done', run_at: runAt });
    expect(first.attempt).to.equal(1);
    const rows = await eventually(async () => {
      const r = await failed(queue);
      return r.length ? r : undefined;
    });
    expect(rows).to.have.length(1);
    expect(rows[0]).to.include({ attempts: 2, state: 'half done' });
    expect((await next(queue)).status).to.equal(204);
  });

  it('with max_retries -1: retried forever', async () => {
    const queue = uniqueQueue();
    await enqueue({ id: 'a', queue, timeout: 0, max_retries: -1 });
    let job;
    for (let i = 1; i <= 6; i++) {
      job = await eventually(async () => (await drain(queue))[0]);
      expect(job.attempt).to.equal(i);
    }
    expect(await failed(queue)).to.be.empty;
    expect((await complete(queue, 'a')).status).to.equal(200);
  });
});

describe('POST /reschedule', () => {
  it('replaces the job, resets its retries and releases it; state absent clears it', async () => {
    const queue = uniqueQueue();
    await enqueue({ id: 'a', queue, timeout: 30, max_retries: 1, payload: 'v1', state: 's1' });
    await drain(queue);
    await heartbeat(queue, 'a', { state: 's2' });
    const second = await redeliver(queue, 'a');
    expect(second).to.include({ attempt: 2, state: 's2' });
    const res = await call('POST', '/reschedule', { json: { id: 'a', queue, timeout: 30, max_retries: 1, payload: 'v2' } });
    expect(res.status).to.equal(202);
    const [again] = await drain(queue);
    expect(again).to.include({ payload: 'v2', timeout: 30, max_retries: 1, attempt: 1 });
    expect(again).not.to.have.property('state');
  });

  it('sets state and a future run_at', async () => {
    const queue = uniqueQueue();
    await enqueue({ id: 'a', queue, timeout: 5 });
    await drain(queue);
    const runAt = new Date(Date.now() + 1200).toISOString();
    expect((await call('POST', '/reschedule', { json: { id: 'a', queue, timeout: 5, state: { n: 2 }, run_at: runAt } })).status).to.equal(202);
    expect((await next(queue)).status).to.equal(204);
    const job = await eventually(async () => (await drain(queue))[0], 4000);
    expect(job).to.include({ run_at: runAt });
    expect(job.state).to.deep.equal({ n: 2 });
  });

  it('gives a rescheduled job a fresh retry budget', async () => {
    const queue = uniqueQueue();
    await enqueue({ id: 'a', queue, timeout: 0, max_retries: 1 });
    await drain(queue);
    await eventually(async () => (await drain(queue))[0]); // second and last delivery
    await call('POST', '/reschedule', { json: { id: 'a', queue, timeout: 0, max_retries: 1 } });
    await drain(queue);
    const again = await eventually(async () => (await drain(queue))[0]);
    expect(again.attempt).to.equal(2);
  });

  it('answers 404 for a job that does not exist or is not in flight, changing nothing', async () => {
    const queue = uniqueQueue();
    expect((await call('POST', '/reschedule', { json: { id: 'nope', queue, timeout: 5 } })).status).to.equal(404);
    await enqueue({ id: 'w', queue, timeout: 5, payload: 'orig' });
    expect((await call('POST', '/reschedule', { json: { id: 'w', queue, timeout: 5, payload: 'new' } })).status).to.equal(404);
    expect((await drain(queue))[0].payload).to.equal('orig');
  });

  it('validates its body like enqueue', async () => {
    const res = await call('POST', '/reschedule', { json: { id: 'a', queue: 'q', timeout: 5, max_retry: 1 } });
    expect(res.status).to.equal(400);
    expect(res.body.errors).to.deep.include({ path: '/body/max_retry', message: 'must NOT have additional properties' });
  });
});

describe('DELETE /v1/complete', () => {
  it('removes an in-flight job; completing it again is a 404', async () => {
    const queue = uniqueQueue();
    await enqueue({ id: 'a', queue, timeout: 0, max_retries: -1 });
    await drain(queue);
    expect((await complete(queue, 'a')).status).to.equal(200);
    expect((await complete(queue, 'a')).status).to.equal(404);
    await sleep(300);
    expect((await next(queue)).status).to.equal(204);
    expect((await heartbeat(queue, 'a')).status).to.equal(404);
  });

  it('removes a waiting job too', async () => {
    const queue = uniqueQueue();
    await enqueue({ id: 'a', queue, timeout: 5 });
    expect((await complete(queue, 'a')).status).to.equal(200);
    expect((await next(queue)).status).to.equal(204);
  });

  it('lets the id be enqueued again once completed', async () => {
    const queue = uniqueQueue();
    await enqueue({ id: 'a', queue, timeout: 5 });
    await complete(queue, 'a');
    expect((await enqueue({ id: 'a', queue, timeout: 5 })).status).to.equal(202);
  });
});
