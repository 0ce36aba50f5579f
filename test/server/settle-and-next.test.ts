import { expect } from 'chai';
import type { RelayServer } from '../../server/src/index.js';
import { scrape, valueOf } from '../helpers/metrics.js';
import { call, complete, drain, enqueue, enqueueBatch, eventually, next, relay, startRelay, uniqueQueue } from '../helpers/relay.js';

/*
 * POST /v1/next: the deliveries of the body settled (completed, or failed with `fail`) in one
 * transaction, then a lease as GET /v1/next makes it. The answer is always a 200 with
 * { jobs, settled }, the settlements' outcomes per delivery, as the separate calls decide them.
 */

interface Settlement {
  queue: string;
  job_id: string;
  run_id: string;
  fail?: { error?: string; retry_in?: number };
}

const settleAndNext = (queue: string, body: Settlement[] | undefined, query: { num_jobs?: number; wait?: number } = {}, baseUrl?: string) =>
  call('POST', '/v1/next', { query: { queue, ...query }, ...(body === undefined ? {} : { json: body }), baseUrl });
const jobPath = (queue: string, id: string) => `/v1/queues/${encodeURIComponent(queue)}/jobs/${encodeURIComponent(id)}`;
const jobOf = async (queue: string, id: string, baseUrl?: string) => {
  const res = await call('GET', jobPath(queue, id), { baseUrl });
  return res.status === 404 ? undefined : res.body;
};
const ref = (job: { queue: string; id: string; run_id: string }) => ({ queue: job.queue, job_id: job.id, run_id: job.run_id });

describe('POST /v1/next (settle, then lease)', () => {
  it('completes and fails the deliveries it carries, then leases the next jobs', async () => {
    const queue = uniqueQueue();
    await enqueueBatch(['a', 'b', 'c', 'd', 'e'].map((id) => ({ id, queue, timeout: 30, max_retries: id === 'c' ? 0 : 1 })));
    const [a, b, c] = (await next(queue, 3)).body;
    const body: Settlement[] = [
      ref(a),
      { ...ref(b), fail: { error: 'smtp down', retry_in: 3600 } },
      { ...ref(c), fail: { error: 'broken' } },
    ];
    const res = await settleAndNext(queue, body, { num_jobs: 5 });
    expect(res.status, res.text).to.equal(200);
    expect(res.body.settled.completed).to.deep.equal([ref(a)]);
    expect(res.body.settled.not_found).to.deep.equal([]);
    const [retrying, failed] = res.body.settled.failed;
    expect(retrying).to.include({ ...ref(b), outcome: 'retrying' });
    expect(Date.parse(retrying.run_at)).to.be.greaterThan(Date.now() + 3_000_000);
    expect(failed).to.deep.equal({ ...ref(c), outcome: 'failed' });
    // The lease: the jobs still waiting, in order (b waits an hour for its retry).
    expect(res.body.jobs.map((j: { id: string }) => j.id)).to.deep.equal(['d', 'e']);

    // Each delivery as the separate calls would have left it.
    expect(await jobOf(queue, 'a')).to.equal(undefined);
    expect(await jobOf(queue, 'b')).to.include({ status: 'scheduled', retries: 1 });
    expect(await jobOf(queue, 'c')).to.include({ status: 'failed', reason: 'broken' });
    expect(await jobOf(queue, 'd')).to.include({ status: 'in_flight' });
  });

  it('answers not_found per delivery for a stale run_id, a job gone or not in flight, changing nothing for them', async () => {
    const queue = uniqueQueue();
    await enqueue({ id: 'a', queue, timeout: 1, max_retries: -1 });
    await enqueue({ id: 'waiting', queue, timeout: 30, run_at: new Date(Date.now() + 3_600_000).toISOString() });
    const stale = (await drain(queue))[0];
    const current = await eventually(async () => (await drain(queue))[0], 5000);
    expect(current.run_id).not.to.equal(stale.run_id);
    const body: Settlement[] = [
      ref(stale),
      { ...ref(stale), fail: { error: 'stale' } },
      { queue, job_id: 'gone', run_id: '1' },
      { queue, job_id: 'waiting', run_id: '1', fail: {} },
    ];
    const res = await settleAndNext(queue, body, { num_jobs: 0 });
    expect(res.status, res.text).to.equal(200);
    expect(res.body).to.deep.equal({
      jobs: [],
      settled: { completed: [], failed: [], not_found: body.map(({ queue, job_id, run_id }) => ({ queue, job_id, run_id })) },
    });
    expect(await jobOf(queue, 'a')).to.include({ status: 'in_flight', run_id: current.run_id, retries: 1 });
    expect(await jobOf(queue, 'waiting')).to.include({ status: 'scheduled', retries: 0 });
    // The current delivery still settles.
    const done = await settleAndNext(queue, [ref(current)], { num_jobs: 0 });
    expect(done.body.settled.completed).to.deep.equal([ref(current)]);
  });

  it('has no second effect when sent again: every delivery is then not_found', async () => {
    const queue = uniqueQueue();
    await enqueueBatch(['a', 'b'].map((id) => ({ id, queue, timeout: 30, max_retries: 5 })));
    const [a, b] = (await next(queue, 2)).body;
    const body: Settlement[] = [ref(a), { ...ref(b), fail: { retry_in: 0 } }];
    const first = await settleAndNext(queue, body, { num_jobs: 0 });
    expect(first.body.settled.completed).to.have.length(1);
    expect(first.body.settled.failed).to.have.length(1);
    const again = await settleAndNext(queue, body, { num_jobs: 0 });
    expect(again.body.settled).to.deep.equal({ completed: [], failed: [], not_found: [ref(a), ref(b)] });
    // b was failed once, not twice: one retry counted, and it is waiting for its next delivery.
    expect(await jobOf(queue, 'b')).to.include({ status: 'waiting', retries: 1 });
  });

  it('a delivery listed twice counts once', async () => {
    const queue = uniqueQueue();
    await enqueue({ id: 'a', queue, timeout: 30, max_retries: 5 });
    const [a] = (await next(queue, 1)).body;
    const res = await settleAndNext(queue, [ref(a), ref(a), { ...ref(a), fail: {} }], { num_jobs: 0 });
    expect(res.body.settled).to.deep.equal({ completed: [ref(a)], failed: [], not_found: [ref(a), ref(a)] });
  });

  it('without a body (or with []) leases as GET /v1/next does, answering 200 with no jobs when none is available', async () => {
    const queue = uniqueQueue();
    const empty = { completed: [], failed: [], not_found: [] };
    expect((await settleAndNext(queue, undefined)).body).to.deep.equal({ jobs: [], settled: empty });
    await enqueueBatch(['a', 'b'].map((id) => ({ id, queue, timeout: 30 })));
    const res = await settleAndNext(queue, []);
    expect(res.status).to.equal(200);
    expect(res.body.settled).to.deep.equal(empty);
    expect(res.body.jobs).to.have.length(1);
    expect(res.body.jobs[0]).to.include({ id: 'a', queue, attempt: 1 });
    const rest = await settleAndNext(queue, undefined, { num_jobs: 10 });
    expect(rest.body.jobs.map((j: { id: string }) => j.id)).to.deep.equal(['b']);
  });

  it('settles deliveries of other queues than the one it leases from', async () => {
    const [q1, q2] = [uniqueQueue(), uniqueQueue()];
    await enqueue({ id: 'a', queue: q1, timeout: 30 });
    await enqueue({ id: 'b', queue: q2, timeout: 30 });
    const [a] = (await next(q1, 1)).body;
    const res = await settleAndNext(q2, [ref(a)]);
    expect(res.body.settled.completed).to.deep.equal([ref(a)]);
    expect(res.body.jobs.map((j: { id: string }) => j.id)).to.deep.equal(['b']);
  });

  it('refuses bad input with a 400, settling and leasing nothing', async () => {
    const queue = uniqueQueue();
    await enqueueBatch(['a', 'b'].map((id) => ({ id, queue, timeout: 30 })));
    const [a] = (await next(queue, 1)).body;
    const good = ref(a);
    const bad: Array<[string, unknown, Record<string, number>?]> = [
      ['a settlement without run_id', [good, { queue, job_id: 'a' }]],
      ['an unknown field', [good, { ...good, outcome: 'done' }]],
      ['a malformed fail', [good, { ...good, fail: { retry_in: -1 } }]],
      ['a fail error with NUL', [good, { ...good, fail: { error: 'a\u0000b' } }]],
      ['a body that is not an array', { complete: [good] }],
      ['more than 1000 settlements', [good, ...Array.from({ length: 1000 }, (_, i) => ({ queue, job_id: `x${i}`, run_id: '1' }))]],
      ['a key over the limit', [good, { queue, job_id: '€'.repeat(1000), run_id: '1' }]],
      ['a bad num_jobs', [good], { num_jobs: -1 }],
      ['a bad wait', [good], { wait: 61 }],
    ];
    for (const [what, body, query] of bad) {
      const res = await call('POST', '/v1/next', { query: { queue, ...query }, json: body });
      expect(res.status, `${what}: ${res.text}`).to.equal(400);
      expect(res.headers.get('content-type'), what).to.match(/^application\/problem\+json/);
    }
    // Nothing changed: a is still in flight in its delivery, b still waits.
    expect(await jobOf(queue, 'a')).to.include({ status: 'in_flight', run_id: a.run_id });
    expect(await jobOf(queue, 'b')).to.include({ status: 'waiting', attempts: 0 });
  });

  it('counts its completions and failures in the metrics and the throughput', async () => {
    const queue = uniqueQueue();
    await enqueueBatch(['a', 'b', 'c'].map((id) => ({ id, queue, timeout: 30, max_retries: id === 'b' ? 1 : 0 })));
    const [a, b, c] = (await next(queue, 3)).body;
    await settleAndNext(queue, [ref(a), { ...ref(b), fail: { retry_in: 3600 } }, { ...ref(c), fail: {} }], { num_jobs: 0 });
    const samples = await scrape(relay().url);
    expect(valueOf(samples, 'relay_jobs_completed_total', { queue })).to.equal(1);
    expect(valueOf(samples, 'relay_jobs_retried_total', { queue, cause: 'fail' })).to.equal(1);
    expect(valueOf(samples, 'relay_jobs_failed_total', { queue, cause: 'fail' })).to.equal(1);
    await relay().flushThroughput();
    const throughput = await call('GET', `/v1/queues/${encodeURIComponent(queue)}/throughput`);
    expect(throughput.body).to.include({ enqueued: 3, completed: 1, failed: 1 });
  });
});

describe('POST /v1/next with a long poll', () => {
  let server: RelayServer;
  const at = () => server.url;
  const waiting = (n: number) => eventually(async () => server.waitingPolls >= n, 5_000, 10);

  before(async () => {
    server = await startRelay({ pollRecheckMs: 60_000, maxWaitingPolls: 2 });
  });
  after(async () => {
    await server?.close();
  });

  it('commits the settlements before it waits, and they stay when the client goes away', async () => {
    const [done, polled] = [uniqueQueue(), uniqueQueue()];
    await enqueueBatch(['a', 'b'].map((id) => ({ id, queue: done, timeout: 30, max_retries: 3 })), at());
    const [a, b] = (await next(done, 2, at())).body;
    const controller = new AbortController();
    const url = new URL('/v1/next', at());
    url.search = new URLSearchParams({ queue: polled, wait: '30' }).toString();
    const body = JSON.stringify([ref(a), { ...ref(b), fail: { retry_in: 3600 } }]);
    const aborted = fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json' }, signal: controller.signal }).catch((err: Error) => err);
    await waiting(1);
    // Settled while the request waits for a job.
    expect(await jobOf(done, 'a', at())).to.equal(undefined);
    expect(await jobOf(done, 'b', at())).to.include({ status: 'scheduled', retries: 1 });
    controller.abort();
    expect(await aborted).to.be.instanceOf(Error);
    await eventually(async () => server.waitingPolls === 0, 5_000, 10);
    // Still settled; and the wait ended with the client: a job enqueued now goes to the next poll.
    expect(await jobOf(done, 'a', at())).to.equal(undefined);
    expect(await jobOf(done, 'b', at())).to.include({ status: 'scheduled', retries: 1 });
    await enqueue({ id: 'c', queue: polled, timeout: 30 }, at());
    expect((await next(polled, 10, at())).body.map((j: any) => [j.id, j.attempt])).to.deep.equal([['c', 1]]);
  });

  it('answers the outcomes with the job that ends its wait', async () => {
    const [done, polled] = [uniqueQueue(), uniqueQueue()];
    await enqueue({ id: 'a', queue: done, timeout: 30 }, at());
    const [a] = (await next(done, 1, at())).body;
    const answer = settleAndNext(polled, [ref(a)], { wait: 30 }, at());
    await waiting(1);
    await enqueue({ id: 'b', queue: polled, timeout: 30 }, at());
    const res = await answer;
    expect(res.status).to.equal(200);
    expect(res.body.settled.completed).to.deep.equal([ref(a)]);
    expect(res.body.jobs.map((j: { id: string; attempt: number }) => [j.id, j.attempt])).to.deep.equal([['b', 1]]);
  });

  it('answers the outcomes with no jobs when the lease fails after the settlements (here: too many waiting polls)', async () => {
    const [done, polled] = [uniqueQueue(), uniqueQueue()];
    await enqueue({ id: 'a', queue: done, timeout: 30 }, at());
    const [a] = (await next(done, 1, at())).body;
    const holders = [new AbortController(), new AbortController()];
    const held = holders.map((h) => fetch(new URL(`/v1/next?queue=${polled}&wait=30`, at()), { signal: h.signal }).catch(() => undefined));
    try {
      await waiting(2);
      // Without settlements the refusal is the answer, as for GET.
      expect((await settleAndNext(polled, undefined, { wait: 5 }, at())).status).to.equal(429);
      const res = await settleAndNext(polled, [ref(a)], { wait: 5 }, at());
      expect(res.status, res.text).to.equal(200);
      expect(res.body).to.deep.equal({ jobs: [], settled: { completed: [ref(a)], failed: [], not_found: [] } });
      expect(await jobOf(done, 'a', at())).to.equal(undefined);
    } finally {
      for (const h of holders) h.abort();
      await Promise.all(held);
    }
  });

  it('gives a job it claimed for a client that left back to its queue', async () => {
    const queue = uniqueQueue();
    const controller = new AbortController();
    const url = new URL('/v1/next', at());
    url.search = new URLSearchParams({ queue, wait: '30' }).toString();
    const aborted = fetch(url, { method: 'POST', signal: controller.signal }).catch((err: Error) => err);
    await waiting(1);
    controller.abort();
    await aborted;
    await eventually(async () => server.waitingPolls === 0, 5_000, 10);
    await enqueue({ id: 'j', queue, timeout: 30 }, at());
    expect((await next(queue, 10, at())).body.map((j: any) => [j.id, j.attempt])).to.deep.equal([['j', 1]]);
    expect((await complete(queue, 'j', undefined, at())).status).to.equal(200);
  });
});
