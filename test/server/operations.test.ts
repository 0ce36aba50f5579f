import { expect } from 'chai';
import type { RelayServer } from '../../server/src/index.js';
import { call, complete, drain, enqueue, enqueueBatch, eventually, next, sleep, startRelay, uniqueQueue } from '../helpers/relay.js';

const future = () => new Date(Date.now() + 3600_000).toISOString();
const jobPath = (queue: string, id: string) => `/v1/queues/${encodeURIComponent(queue)}/jobs/${encodeURIComponent(id)}`;
const queuePath = (queue: string) => `/v1/queues/${encodeURIComponent(queue)}`;

/** Makes a job fail for good: no retries, leased, failed by its worker. */
async function failJob(queue: string, id: string, reason = 'broken', baseUrl?: string): Promise<void> {
  expect((await enqueue({ id, queue, timeout: 30, max_retries: 0, payload: { id }, state: { step: 1 } }, baseUrl)).status).to.equal(202);
  const [job] = (await next(queue, 1, baseUrl)).body;
  const res = await call('POST', '/v1/fail', { query: { queue, job_id: id, run_id: job.run_id }, json: { error: reason }, baseUrl });
  expect(res.body).to.deep.equal({ outcome: 'failed' });
}

/** Every job of a listing, page by page, calling between(page number) after each page. */
async function allPages(queue: string, status: string, limit: number, between: (page: number) => Promise<void> = async () => undefined) {
  const ids: string[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 100; page++) {
    const res = await call('GET', '/v1/jobs', { query: { queue, status, limit, cursor } });
    expect(res.status, res.text).to.equal(200);
    ids.push(...res.body.jobs.map((j: any) => j.id));
    for (const j of res.body.jobs) expect(j.status).to.equal(status);
    cursor = res.body.next_cursor;
    if (!cursor) return ids;
    await between(page);
  }
  throw new Error('more than 100 pages');
}

describe('operations: job lookup', () => {
  it('finds a job in each status, with what an operator needs; 404 once it is gone', async () => {
    const queue = uniqueQueue();
    await enqueue({ id: 'w', queue, timeout: 30, max_retries: 2, payload: { a: 1 } });
    await enqueue({ id: 's', queue, timeout: 30, run_at: future() });
    const waiting = await call('GET', jobPath(queue, 'w'));
    expect(waiting.status).to.equal(200);
    expect(waiting.body).to.include({ id: 'w', queue, status: 'waiting', timeout: 30, max_retries: 2, retries: 0, attempts: 0 });
    expect(waiting.body.payload).to.deep.equal({ a: 1 });
    expect(waiting.body).to.not.have.property('lease_expires_at');
    expect((await call('GET', jobPath(queue, 's'))).body.status).to.equal('scheduled');

    const [leased] = (await next(queue, 1)).body;
    const inFlight = (await call('GET', jobPath(queue, 'w'))).body;
    expect(inFlight).to.include({ status: 'in_flight', attempts: 1, run_id: leased.run_id });
    expect(Date.parse(inFlight.lease_expires_at) - Date.now()).to.be.within(20_000, 31_000);

    expect((await complete(queue, 'w', leased.run_id)).status).to.equal(200);
    const gone = await call('GET', jobPath(queue, 'w'));
    expect(gone.status).to.equal(404);
    expect(gone.headers.get('content-type')).to.match(/^application\/problem\+json/);
  });

  it('a failed job is found with its reason, time and last state', async () => {
    const queue = uniqueQueue();
    await failJob(queue, 'f', 'SMTP 550');
    const res = await call('GET', jobPath(queue, 'f'));
    expect(res.body).to.include({ status: 'failed', reason: 'SMTP 550', attempts: 1, retries: 0 });
    expect(res.body.state).to.deep.equal({ step: 1 });
    expect(Math.abs(Date.parse(res.body.failed_at) - Date.now())).to.be.below(60_000);
  });

  it('HEAD answers 200 or 404 with no body', async () => {
    const queue = uniqueQueue();
    await enqueue({ id: 'x', queue, timeout: 30 });
    const found = await call('HEAD', jobPath(queue, 'x'));
    expect(found.status).to.equal(200);
    expect(found.text).to.equal('');
    const missing = await call('HEAD', jobPath(queue, 'nope'));
    expect(missing.status).to.equal(404);
    expect(missing.text).to.equal('');
  });

  it('ids with slashes, spaces and Unicode are found when percent-encoded', async () => {
    const queue = uniqueQueue('q/ü');
    const id = 'a/b c?d#é';
    await enqueue({ id, queue, timeout: 30 });
    const res = await call('GET', jobPath(queue, id));
    expect(res.status, res.text).to.equal(200);
    expect(res.body).to.include({ id, queue });
  });

  it('the paths relay-rs leases and heartbeats on keep no other meaning', async () => {
    const queue = uniqueQueue();
    await enqueue({ id: 'x', queue, timeout: 30 });
    expect((await call('GET', `/v1/queues/${queue}/jobs`)).status).to.equal(404);
    expect((await call('PATCH', jobPath(queue, 'x'))).status).to.equal(405);
    expect(await drain(queue), 'nothing was leased').to.have.length(1);
  });
});

describe('operations: listing', () => {
  it('pages through waiting jobs in delivery order while jobs are added and completed between pages', async () => {
    const queue = uniqueQueue();
    await enqueueBatch(Array.from({ length: 25 }, (_, i) => ({ id: `j${String(i).padStart(2, '0')}`, queue, timeout: 30 })));
    const ids = await allPages(queue, 'waiting', 10, async (page) => {
      // New jobs join the end; leasing the head removes jobs already listed.
      await enqueue({ id: `late${page}`, queue, timeout: 30 });
      if (page === 0) for (const j of (await next(queue, 3)).body) await complete(queue, j.id, j.run_id);
    });
    const first = Array.from({ length: 25 }, (_, i) => `j${String(i).padStart(2, '0')}`);
    expect(ids.slice(0, 25)).to.deep.equal(first);
    expect(new Set(ids).size, 'no job twice').to.equal(ids.length);
    expect(ids.slice(25)).to.deep.equal(['late0', 'late1']);
  });

  it('lists scheduled jobs by run_at, in-flight jobs in delivery order and failed jobs newest first', async () => {
    const queue = uniqueQueue();
    const base = Date.now() + 3600_000;
    for (const [id, offset] of [['later', 2000], ['sooner', 1000], ['soonest', 0]] as const) {
      await enqueue({ id, queue, timeout: 30, run_at: new Date(base + offset).toISOString() });
    }
    expect(await allPages(queue, 'scheduled', 2)).to.deep.equal(['soonest', 'sooner', 'later']);

    for (const id of ['a', 'b', 'c']) await enqueue({ id, queue, timeout: 30 });
    for (const id of ['a', 'b', 'c']) expect((await next(queue, 1)).body[0].id).to.equal(id);
    expect(await allPages(queue, 'in_flight', 2)).to.deep.equal(['a', 'b', 'c']);

    for (const id of ['f1', 'f2', 'f3']) await failJob(queue, id);
    expect(await allPages(queue, 'failed', 2)).to.deep.equal(['f3', 'f2', 'f1']);
  });

  it('refuses a cursor it did not give, or one given for another status', async () => {
    const queue = uniqueQueue();
    await enqueueBatch([1, 2, 3].map((i) => ({ id: String(i), queue, timeout: 30 })));
    const page = await call('GET', '/v1/jobs', { query: { queue, status: 'waiting', limit: 1 } });
    expect(page.body.next_cursor).to.be.a('string');
    const other = await call('GET', '/v1/jobs', { query: { queue, status: 'failed', cursor: page.body.next_cursor } });
    expect(other.status).to.equal(400);
    expect(other.body.errors[0].path).to.equal('/query/cursor');
    expect((await call('GET', '/v1/jobs', { query: { queue, status: 'waiting', cursor: 'bm90LWEtY3Vyc29y' } })).status).to.equal(400);
    expect((await call('GET', '/v1/jobs', { query: { queue, status: 'lost' } })).status).to.equal(400);
  });
});

describe('operations: queue counts', () => {
  it('counts waiting, scheduled, in-flight and failed jobs and the age of the oldest waiting one, exactly', async () => {
    const queue = uniqueQueue();
    const past = new Date(Date.now() - 60_000).toISOString();
    await failJob(queue, 'dead');
    await enqueueBatch(Array.from({ length: 9 }, (_, i) => ({ id: `w${i}`, queue, timeout: 30 })));
    await enqueueBatch(Array.from({ length: 4 }, (_, i) => ({ id: `s${i}`, queue, timeout: 30, run_at: future() })));
    await next(queue, 3);
    await enqueue({ id: 'old', queue, timeout: 30, run_at: past });
    const res = await call('GET', queuePath(queue));
    expect(res.status).to.equal(200);
    expect(res.body).to.include({ queue, waiting: 7, scheduled: 4, in_flight: 3, failed: 1, paused: false });
    expect(res.body.oldest_waiting_seconds).to.be.within(50, 120);

    const listed = (await call('GET', '/v1/queues')).body.find((q: any) => q.queue === queue);
    expect(listed).to.include({ waiting: 7, scheduled: 4, in_flight: 3, failed: 1, paused: false });
  });

  it('an unknown queue has zero counts and is not listed', async () => {
    const queue = uniqueQueue();
    expect((await call('GET', queuePath(queue))).body).to.deep.equal({
      queue, waiting: 0, scheduled: 0, in_flight: 0, failed: 0, oldest_waiting_seconds: null, paused: false,
    });
    expect((await call('GET', '/v1/queues')).body.map((q: any) => q.queue)).to.not.include(queue);
  });

  it('counts stay exact through leases, expiries, completions, reschedules and cancels', async () => {
    const queue = uniqueQueue();
    await enqueueBatch(Array.from({ length: 6 }, (_, i) => ({ id: `j${i}`, queue, timeout: 1, max_retries: 1 })));
    const leased = (await next(queue, 4)).body;
    await complete(queue, leased[0].id, leased[0].run_id);
    await call('POST', '/reschedule', { json: { id: leased[1].id, queue, timeout: 30, run_at: future(), run_id: leased[1].run_id } });
    await call('DELETE', jobPath(queue, leased[2].id));
    // leased[3] expires and goes back to waiting (one retry left).
    await eventually(async () => (await call('GET', jobPath(queue, leased[3].id))).body.status === 'waiting', 10_000);
    expect((await call('GET', queuePath(queue))).body).to.include({ waiting: 3, scheduled: 1, in_flight: 0, failed: 0 });
  });
});

describe('operations: pause and resume', () => {
  let server: RelayServer;
  // Waiting polls re-check only once a minute: only the resume's own wake-up can release one in time.
  before(async () => {
    server = await startRelay({ pollRecheckMs: 60_000 });
  });
  after(() => server.close());

  it('a paused queue accepts jobs and leases none; resume releases a waiting long poll at once', async () => {
    const queue = uniqueQueue();
    const baseUrl = server.url;
    const paused = await call('POST', `${queuePath(queue)}/pause`, { baseUrl });
    expect(paused.body).to.include({ queue, paused: true });
    expect(paused.body.paused_at).to.be.a('string');
    expect((await enqueue({ id: 'a', queue, timeout: 30 }, baseUrl)).status).to.equal(202);
    expect((await next(queue, 1, baseUrl)).status).to.equal(204);

    const poll = call('GET', '/v1/next', { query: { queue, wait: 30 }, baseUrl });
    await eventually(async () => server.waitingPolls > 0);
    // A job enqueued while paused is not handed to the waiting poll either.
    expect((await enqueue({ id: 'b', queue, timeout: 30 }, baseUrl)).status).to.equal(202);
    await sleep(300);
    expect(server.waitingPolls, 'the poll still waits').to.equal(1);
    expect((await call('GET', '/v1/queues', { baseUrl })).body.find((q: any) => q.queue === queue)).to.include({ paused: true, waiting: 2 });

    const started = Date.now();
    const resumed = await call('POST', `${queuePath(queue)}/resume`, { baseUrl });
    expect(resumed.body).to.include({ paused: false });
    expect(resumed.body).to.not.have.property('paused_at');
    const answer = await poll;
    expect(answer.status).to.equal(200);
    expect(answer.body[0].id).to.equal('a');
    expect(Date.now() - started, 'woken by the resume, not by a re-check').to.be.below(5_000);
  });

  it('pausing keeps the leases in flight: they heartbeat and complete as usual', async () => {
    const queue = uniqueQueue();
    const baseUrl = server.url;
    await enqueue({ id: 'a', queue, timeout: 30 }, baseUrl);
    const [job] = (await next(queue, 1, baseUrl)).body;
    await call('POST', `${queuePath(queue)}/pause`, { baseUrl });
    expect((await call('PATCH', '/v1/heartbeat', { query: { queue, job_id: 'a', run_id: job.run_id }, baseUrl })).status).to.equal(202);
    expect((await complete(queue, 'a', job.run_id, baseUrl)).status).to.equal(200);
    await call('POST', `${queuePath(queue)}/resume`, { baseUrl });
  });

  it('pause and resume change nothing the second time', async () => {
    const queue = uniqueQueue();
    const first = (await call('POST', `${queuePath(queue)}/pause`)).body;
    await sleep(20);
    const second = (await call('POST', `${queuePath(queue)}/pause`)).body;
    expect(second.paused_at).to.equal(first.paused_at);
    expect((await call('POST', `${queuePath(queue)}/resume`)).body.paused).to.equal(false);
    expect((await call('POST', `${queuePath(queue)}/resume`)).body.paused).to.equal(false);
  });
});

describe('operations: cancel', () => {
  it('removes a waiting or scheduled job; a second cancel is a 404', async () => {
    const queue = uniqueQueue();
    await enqueue({ id: 'w', queue, timeout: 30 });
    await enqueue({ id: 's', queue, timeout: 30, run_at: future() });
    expect((await call('DELETE', jobPath(queue, 'w'))).status).to.equal(204);
    expect((await call('DELETE', jobPath(queue, 's'))).status).to.equal(204);
    expect((await call('DELETE', jobPath(queue, 'w'))).status).to.equal(404);
    expect(await drain(queue)).to.deep.equal([]);
    expect((await call('GET', queuePath(queue))).body).to.include({ waiting: 0, scheduled: 0 });
  });

  it('removes an in-flight job: its worker heartbeat and completion answer 404, and the id is free again', async () => {
    const queue = uniqueQueue();
    await enqueue({ id: 'x', queue, timeout: 30 });
    const [job] = (await next(queue, 1)).body;
    expect((await call('DELETE', jobPath(queue, 'x'))).status).to.equal(204);
    expect((await call('PATCH', '/v1/heartbeat', { query: { queue, job_id: 'x', run_id: job.run_id } })).status).to.equal(404);
    expect((await complete(queue, 'x', job.run_id)).status).to.equal(404);
    expect((await enqueue({ id: 'x', queue, timeout: 30 })).status).to.equal(202);
  });

  it('purges a failed job', async () => {
    const queue = uniqueQueue();
    await failJob(queue, 'f');
    expect((await call('DELETE', jobPath(queue, 'f'))).status).to.equal(204);
    expect((await call('GET', jobPath(queue, 'f'))).status).to.equal(404);
    expect((await call('GET', queuePath(queue))).body.failed).to.equal(0);
  });
});

describe('operations: replay and purge', () => {
  it('retries a failed job with a fresh budget, its payload and last state; it is then processed as usual', async () => {
    const queue = uniqueQueue();
    await failJob(queue, 'r');
    const res = await call('POST', `${jobPath(queue, 'r')}/retry`);
    expect(res.status, res.text).to.equal(200);
    expect(res.body).to.include({ status: 'waiting', retries: 0, attempts: 0, max_retries: 0 });
    expect(res.body.state).to.deep.equal({ step: 1 });
    const [job] = (await next(queue, 1)).body;
    expect(job).to.include({ id: 'r', attempt: 1 });
    expect(job.payload).to.deep.equal({ id: 'r' });
    expect(job.state).to.deep.equal({ step: 1 });
    expect((await complete(queue, 'r', job.run_id)).status).to.equal(200);
    expect((await call('GET', jobPath(queue, 'r'))).status, 'no failure left behind').to.equal(404);
  });

  it('a retry is a 409 while a job with the id is live, and a 404 without a kept failure', async () => {
    const queue = uniqueQueue();
    await failJob(queue, 'r');
    await enqueue({ id: 'r', queue, timeout: 30 });
    const conflict = await call('POST', `${jobPath(queue, 'r')}/retry`);
    expect(conflict.status).to.equal(409);
    expect((await call('GET', '/v1/jobs', { query: { queue, status: 'failed' } })).body.jobs, 'the failure stays').to.have.length(1);
    const none = await call('POST', `${jobPath(queue, 'nothing')}/retry`);
    expect(none.status).to.equal(404);
    expect(none.body.type).to.equal('urn:relay-ts:problem:failed-job-not-found');
  });

  it('retries or purges all failed jobs of a queue, or those failed before a time', async () => {
    const queue = uniqueQueue();
    for (const id of ['a', 'b', 'c']) await failJob(queue, id);
    await sleep(50);
    const cut = new Date().toISOString();
    await sleep(50);
    for (const id of ['d', 'e']) await failJob(queue, id);
    await enqueue({ id: 'a', queue, timeout: 30, run_at: future() }); // a live again: skipped

    const retried = await call('POST', `${queuePath(queue)}/failed/retry`, { query: { failed_before: cut } });
    expect(retried.body).to.deep.equal({ retried: 2, skipped: 1 });
    expect((await drain(queue)).map((j: any) => j.id).sort()).to.deep.equal(['b', 'c']);

    const purged = await call('DELETE', `${queuePath(queue)}/failed`, { query: { failed_before: cut } });
    expect(purged.body).to.deep.equal({ purged: 1 });
    expect((await allPages(queue, 'failed', 10)).sort()).to.deep.equal(['d', 'e']);
    expect((await call('DELETE', `${queuePath(queue)}/failed`)).body).to.deep.equal({ purged: 2 });
    expect((await call('GET', queuePath(queue))).body.failed).to.equal(0);
  });

  it('a bulk retry works through more failures than one batch', async () => {
    const queue = uniqueQueue();
    const n = 1203;
    await enqueueBatch(Array.from({ length: n }, (_, i) => ({ id: String(i), queue, timeout: 30, max_retries: 0 })));
    let leased = 0;
    while (leased < n) {
      const jobs = (await next(queue, 1000)).body;
      leased += jobs.length;
      await Promise.all(jobs.map((j: any) => call('POST', '/v1/fail', { query: { queue, job_id: j.id, run_id: j.run_id }, json: { error: 'x' } })));
    }
    expect((await call('GET', queuePath(queue))).body.failed).to.equal(n);
    expect((await call('POST', `${queuePath(queue)}/failed/retry`)).body).to.deep.equal({ retried: n, skipped: 0 });
    expect((await call('GET', queuePath(queue))).body).to.include({ waiting: n, failed: 0 });
  });

  it('refuses a failed_before that is not an RFC 3339 time', async () => {
    const res = await call('DELETE', `${queuePath(uniqueQueue())}/failed`, { query: { failed_before: 'yesterday' } });
    expect(res.status).to.equal(400);
  });
});

describe('operations: retention', () => {
  let server: RelayServer;
  before(async () => {
    server = await startRelay({ failedRetentionSeconds: 2 });
  });
  after(() => server.close());

  it('the reaper purges failed jobs older than the retention, and only those', async () => {
    const queue = uniqueQueue();
    const baseUrl = server.url;
    await failJob(queue, 'old', 'x', baseUrl);
    await sleep(1500);
    await failJob(queue, 'new', 'x', baseUrl);
    await eventually(async () => (await call('GET', jobPath(queue, 'old'), { baseUrl })).status === 404, 5_000);
    expect((await call('GET', jobPath(queue, 'new'), { baseUrl })).status, 'younger than the retention').to.equal(200);
  });
});
