import { expect } from 'chai';
import {
  JobExistsError, JobNotFoundError, MAX_ENQUEUE_BATCH, RelayClient, ValidationError, type Job,
} from '../../client/src/index.js';
import { TestProxy } from '../helpers/proxy.js';
import { call, relay, uniqueQueue } from '../helpers/relay.js';
import { rejection } from '../helpers/rejection.js';

/** The job type a producer and a worker of these tests share. */
interface Mail {
  to: string;
  n: number;
}
interface Progress {
  sent: number;
}

const client = () => new RelayClient<Mail, Progress>({ baseUrl: relay().url });


/** Leases the one job of a queue. */
async function leaseOne(relayClient: RelayClient<Mail, Progress>, queue: string): Promise<Job<Mail, Progress>> {
  const jobs = await relayClient.next(queue);
  expect(jobs).to.have.length(1);
  return jobs[0]!;
}

describe('RelayClient methods against a live server', () => {
  let proxy: TestProxy;
  before(async () => {
    proxy = await TestProxy.start(relay().url);
  });
  after(() => proxy.close());

  describe('enqueue', () => {
    it('stores a job that next hands back with every field', async () => {
      const c = client();
      const queue = uniqueQueue();
      const runAt = new Date(Date.now() - 60_000).toISOString();
      await c.enqueue({ id: 'a', queue, timeout: 30, max_retries: 2, payload: { to: 'ada@example.com', n: 1 }, state: { sent: 3 }, run_at: runAt });
      const job = await leaseOne(c, queue);
      expect(job).to.include({ id: 'a', queue, timeout: 30, max_retries: 2, attempt: 1 });
      expect(new Date(job.run_at).getTime()).to.equal(new Date(runAt).getTime());
      expect(job.payload).to.deep.equal({ to: 'ada@example.com', n: 1 });
      expect(job.state).to.deep.equal({ sent: 3 });
      expect(job.run_id).to.be.a('string').and.not.empty;
    });

    it('accepts run_at as a Date: the job stays invisible until then', async () => {
      const c = client();
      const queue = uniqueQueue();
      const past = new Date(Date.now() - 5_000);
      await c.enqueue({ id: 'later', queue, timeout: 30, run_at: new Date(Date.now() + 60_000) });
      await c.enqueue({ id: 'now', queue, timeout: 30, run_at: past });
      const jobs = await c.next(queue, { numJobs: 10 });
      expect(jobs.map((j) => j.id)).to.deep.equal(['now']);
      expect(new Date(jobs[0]!.run_at).getTime()).to.equal(past.getTime());
    });

    it('sends an invalid Date to the server, which answers with a ValidationError', async () => {
      const err = await rejection(client().enqueue({ id: 'a', queue: uniqueQueue(), timeout: 30, run_at: new Date(Number.NaN) }));
      expect(err).to.be.instanceOf(ValidationError);
      expect((err as ValidationError).problem?.errors?.map((e) => e.path)).to.include('/body/run_at');
    });

    it('throws JobExistsError for an existing (queue, id) and keeps the first job', async () => {
      const c = client();
      const queue = uniqueQueue();
      await c.enqueue({ id: 'a', queue, timeout: 30, payload: { to: 'first', n: 1 } });
      const err = await rejection(c.enqueue({ id: 'a', queue, timeout: 30, payload: { to: 'second', n: 2 } }));
      expect(err).to.be.instanceOf(JobExistsError);
      expect(err).to.include({ status: 409, attempts: 1, afterUncertainAttempt: false, method: 'POST', path: '/enqueue' });
      expect((await leaseOne(c, queue)).payload.to).to.equal('first');
    });

    it('throws ValidationError for an out-of-range field, naming it', async () => {
      const err = await rejection(client().enqueue({ id: 'a', queue: uniqueQueue(), timeout: -1 }));
      expect(err).to.be.instanceOf(ValidationError);
      expect((err as ValidationError).status).to.equal(400);
      expect((err as ValidationError).problem?.errors?.map((e) => e.path)).to.include('/body/timeout');
    });

    it('throws ValidationError for an unknown field smuggled past the types', async () => {
      const job = { id: 'a', queue: uniqueQueue(), timeout: 5, max_retry: 3 };
      const err = await rejection(client().enqueue(job));
      expect(err).to.be.instanceOf(ValidationError);
      expect((err as ValidationError).problem?.errors?.map((e) => e.path)).to.include('/body/max_retry');
    });

    it('throws ValidationError for a value the database could not store (a NUL character)', async () => {
      const c = new RelayClient<string>({ baseUrl: relay().url });
      const queue = uniqueQueue();
      const err = await rejection(c.enqueue({ id: 'nul', queue, timeout: 5, payload: 'a\u0000b' }));
      expect(err).to.be.instanceOf(ValidationError);
      expect((err as ValidationError).problem?.errors?.[0]?.path).to.equal('/body/payload');
      expect(await c.next(queue)).to.deep.equal([]);
    });
  });

  describe('enqueueBatch', () => {
    it('stores the jobs in array order and drops existing ones silently', async () => {
      const c = client();
      const queue = uniqueQueue();
      await c.enqueue({ id: '1', queue, timeout: 30, payload: { to: 'kept', n: 0 } });
      const jobs = ['1', '2', '3', '2'].map((id, i) => ({ id, queue, timeout: 30, payload: { to: `x${i}`, n: i } }));
      await c.enqueueBatch(jobs);
      const leased = await c.next(queue, { numJobs: 10 });
      expect(leased.map((j) => [j.id, j.payload.to])).to.deep.equal([['1', 'kept'], ['2', 'x1'], ['3', 'x2']]);
    });

    it('stores nothing when one element is malformed, with a ValidationError', async () => {
      const c = client();
      const queue = uniqueQueue();
      const err = await rejection(c.enqueueBatch([{ id: 'ok', queue, timeout: 5 }, { id: 'bad', queue, timeout: -5 }]));
      expect(err).to.be.instanceOf(ValidationError);
      expect(await c.next(queue, { numJobs: 10 })).to.deep.equal([]);
    });

    it('throws ValidationError for a NUL character in a state', async () => {
      const c = new RelayClient<unknown, string>({ baseUrl: relay().url });
      const err = await rejection(c.enqueueBatch([{ id: 'a', queue: uniqueQueue(), timeout: 5, state: '\u0000' }]));
      expect(err).to.be.instanceOf(ValidationError);
    });

    it('splits an array larger than maxBatchSize into requests sent in order', async () => {
      const c = new RelayClient<Mail>({ baseUrl: proxy.url, maxBatchSize: 3 });
      const queue = uniqueQueue();
      const before = proxy.seen('/enqueue/batch').length;
      const jobs = Array.from({ length: 10 }, (_, i) => ({ id: `j${i}`, queue, timeout: 30, payload: { to: queue, n: i } }));
      await c.enqueueBatch(jobs);
      const sent = proxy.seen('/enqueue/batch').slice(before).map((r) => JSON.parse(r.body) as Array<{ id: string }>);
      expect(sent.map((body) => body.length)).to.deep.equal([3, 3, 3, 1]);
      expect(sent.flat().map((j) => j.id)).to.deep.equal(jobs.map((j) => j.id));
      const leased = await c.next(queue, { numJobs: 100 });
      expect(leased.map((j) => j.payload.n)).to.deep.equal(jobs.map((j) => j.payload.n));
    });

    it('by default sends as many jobs per request as the server takes, and no more', async function () {
      this.timeout(120_000);
      const queue = uniqueQueue();
      const jobs = Array.from({ length: MAX_ENQUEUE_BATCH + 1 }, (_, i) => ({ id: String(i), queue, timeout: 30 }));
      // The server refuses one job more than the limit in one request...
      expect((await call('POST', '/enqueue/batch', { json: jobs })).status).to.equal(400);
      // ...so the client sends the limit, then the rest.
      const before = proxy.seen('/enqueue/batch').length;
      await new RelayClient({ baseUrl: proxy.url }).enqueueBatch(jobs);
      const sizes = proxy.seen('/enqueue/batch').slice(before).map((r) => (JSON.parse(r.body) as unknown[]).length);
      expect(sizes).to.deep.equal([MAX_ENQUEUE_BATCH, 1]);
      const leased = await client().next(queue, { numJobs: 1000 });
      expect(leased.map((j) => j.id)).to.deep.equal(jobs.slice(0, 1000).map((j) => j.id));
    });

    it('sends nothing for an empty array', async () => {
      const before = proxy.requests.length;
      await new RelayClient({ baseUrl: proxy.url }).enqueueBatch([]);
      expect(proxy.requests.length).to.equal(before);
    });
  });

  describe('next', () => {
    it('returns [] when no job is available (204)', async () => {
      expect(await client().next(uniqueQueue())).to.deep.equal([]);
    });

    it('leases up to numJobs jobs, oldest first, each once', async () => {
      const c = client();
      const queue = uniqueQueue();
      await c.enqueueBatch(['a', 'b', 'c'].map((id) => ({ id, queue, timeout: 30 })));
      expect((await c.next(queue, { numJobs: 2 })).map((j) => j.id)).to.deep.equal(['a', 'b']);
      expect((await c.next(queue, { numJobs: 2 })).map((j) => j.id)).to.deep.equal(['c']);
      expect(await c.next(queue, { numJobs: 2 })).to.deep.equal([]);
    });

    it('passes num_jobs and wait through as query parameters', async () => {
      const queue = uniqueQueue();
      await new RelayClient({ baseUrl: proxy.url }).next(queue, { numJobs: 7, wait: 0.5 });
      const seen = proxy.seen('/v1/next').at(-1)!;
      expect(Object.fromEntries(seen.query)).to.deep.equal({ queue, num_jobs: '7', wait: '0.5' });
    });

    it('throws ValidationError for numJobs out of range', async () => {
      const err = await rejection(client().next(uniqueQueue(), { numJobs: -1 }));
      expect(err).to.be.instanceOf(ValidationError);
    });
  });

  describe('heartbeat', () => {
    /** Enqueues a job with a state and leases it; fail(retryIn: 0) later shows the stored state. */
    async function leased(c: RelayClient<Mail, Progress>) {
      const queue = uniqueQueue();
      await c.enqueue({ id: 'h', queue, timeout: 30, max_retries: 5, state: { sent: 1 } });
      const job = await leaseOne(c, queue);
      return { queue, job };
    }
    async function storedState(c: RelayClient<Mail, Progress>, queue: string) {
      await c.fail(queue, 'h', { retryIn: 0 });
      const job = await leaseOne(c, queue);
      return 'state' in job ? job.state : 'absent';
    }

    it('without state sends no body and keeps the stored state', async () => {
      const c = new RelayClient<Mail, Progress>({ baseUrl: proxy.url });
      const { queue, job } = await leased(c);
      await c.heartbeat(queue, job.id, { runId: job.run_id });
      const seen = proxy.seen('/v1/heartbeat').at(-1)!;
      expect(seen.body).to.equal('');
      expect(seen.headers['content-type']).to.equal(undefined);
      expect(seen.query.get('run_id')).to.equal(job.run_id);
      expect(await storedState(c, queue)).to.deep.equal({ sent: 1 });
    });

    it('with a state replaces the stored state', async () => {
      const c = client();
      const { queue, job } = await leased(c);
      await c.heartbeat(queue, job.id, { state: { sent: 42 } });
      expect(await storedState(c, queue)).to.deep.equal({ sent: 42 });
    });

    it('with state null sends a JSON null and clears the stored state', async () => {
      const c = new RelayClient<Mail, Progress>({ baseUrl: proxy.url });
      const { queue, job } = await leased(c);
      await c.heartbeat(queue, job.id, { state: null });
      expect(proxy.seen('/v1/heartbeat').at(-1)!.body).to.equal('null');
      expect(await storedState(c, queue)).to.equal('absent');
    });

    it('throws JobNotFoundError for a job not in flight, or a stale runId', async () => {
      const c = client();
      const { queue, job } = await leased(c);
      expect(await rejection(c.heartbeat(queue, 'nope'))).to.be.instanceOf(JobNotFoundError);
      const err = await rejection(c.heartbeat(queue, job.id, { runId: `${job.run_id}0` }));
      expect(err).to.be.instanceOf(JobNotFoundError);
      expect((err as JobNotFoundError).status).to.equal(404);
    });

    it('throws ValidationError for a state the database could not store', async () => {
      const c = new RelayClient<Mail, string>({ baseUrl: relay().url });
      const queue = uniqueQueue();
      await c.enqueue({ id: 'h', queue, timeout: 30 });
      const [job] = await c.next(queue);
      expect(await rejection(c.heartbeat(queue, job!.id, { state: '\u0000' }))).to.be.instanceOf(ValidationError);
    });
  });

  describe('reschedule', () => {
    it('releases an in-flight job with new settings', async () => {
      const c = client();
      const queue = uniqueQueue();
      await c.enqueue({ id: 'r', queue, timeout: 30, payload: { to: 'old', n: 1 }, state: { sent: 1 } });
      const job = await leaseOne(c, queue);
      await c.reschedule({ id: 'r', queue, timeout: 60, max_retries: 1, payload: { to: 'new', n: 2 }, run_id: job.run_id, run_at: new Date(Date.now() - 1000) });
      const again = await leaseOne(c, queue);
      expect(again).to.include({ timeout: 60, max_retries: 1 });
      expect(again.payload).to.deep.equal({ to: 'new', n: 2 });
      expect(again).not.to.have.property('state');
      expect(again.run_id).not.to.equal(job.run_id);
    });

    it('keeps the job from next until a future run_at', async () => {
      const c = client();
      const queue = uniqueQueue();
      await c.enqueue({ id: 'r', queue, timeout: 30 });
      await leaseOne(c, queue);
      await c.reschedule({ id: 'r', queue, timeout: 30, run_at: new Date(Date.now() + 60_000) });
      expect(await c.next(queue)).to.deep.equal([]);
    });

    it('throws JobNotFoundError for a job that is not in flight', async () => {
      const c = client();
      const queue = uniqueQueue();
      await c.enqueue({ id: 'r', queue, timeout: 30 });
      expect(await rejection(c.reschedule({ id: 'r', queue, timeout: 30 }))).to.be.instanceOf(JobNotFoundError);
    });

    it('throws ValidationError for an invalid field', async () => {
      const err = await rejection(client().reschedule({ id: 'r', queue: uniqueQueue(), timeout: 30, run_id: '' }));
      expect(err).to.be.instanceOf(ValidationError);
    });
  });

  describe('complete', () => {
    it('removes a job', async () => {
      const c = client();
      const queue = uniqueQueue();
      await c.enqueue({ id: 'c', queue, timeout: 30 });
      const job = await leaseOne(c, queue);
      await c.complete(queue, job.id, { runId: job.run_id });
      expect(await rejection(c.complete(queue, job.id))).to.be.instanceOf(JobNotFoundError);
    });

    it('throws JobNotFoundError for a stale runId and leaves the job alone', async () => {
      const c = client();
      const queue = uniqueQueue();
      await c.enqueue({ id: 'c', queue, timeout: 30 });
      const job = await leaseOne(c, queue);
      expect(await rejection(c.complete(queue, job.id, { runId: `${job.run_id}0` }))).to.be.instanceOf(JobNotFoundError);
      await c.complete(queue, job.id, { runId: job.run_id });
    });
  });

  describe('completeBatch', () => {
    it('answers which jobs were completed and which were not found', async () => {
      const c = client();
      const queue = uniqueQueue();
      await c.enqueueBatch(['a', 'b'].map((id) => ({ id, queue, timeout: 30 })));
      const [a, b] = await c.next(queue, { numJobs: 2 });
      const result = await c.completeBatch([
        { queue, job_id: a!.id, run_id: a!.run_id },
        { queue, job_id: b!.id, run_id: `${b!.run_id}0` },
        { queue, job_id: 'missing' },
      ]);
      expect(result.completed).to.deep.equal([{ queue, job_id: 'a', run_id: a!.run_id }]);
      expect(result.not_found.map((r) => r.job_id).sort()).to.deep.equal(['b', 'missing']);
      expect((await c.completeBatch([{ queue, job_id: 'b' }])).completed.map((r) => r.job_id)).to.deep.equal(['b']);
    });

    it('splits a long list into requests and merges their answers', async () => {
      const c = new RelayClient({ baseUrl: proxy.url, maxCompleteBatchSize: 2 });
      const queue = uniqueQueue();
      const ids = ['1', '2', '3', '4', '5'];
      await c.enqueueBatch(ids.map((id) => ({ id, queue, timeout: 30 })));
      const before = proxy.seen('/v1/complete/batch').length;
      const result = await c.completeBatch([...ids, 'x'].map((job_id) => ({ queue, job_id })));
      expect(proxy.seen('/v1/complete/batch').length - before).to.equal(3);
      expect(result.completed.map((r) => r.job_id).sort()).to.deep.equal(ids);
      expect(result.not_found.map((r) => r.job_id)).to.deep.equal(['x']);
    });

    it('throws ValidationError for a malformed reference', async () => {
      expect(await rejection(client().completeBatch([{ queue: uniqueQueue(), job_id: '' }]))).to.be.instanceOf(ValidationError);
    });
  });

  describe('settleAndNext', () => {
    it('completes and fails deliveries, then leases, in one request', async () => {
      const c = new RelayClient<Mail, Progress>({ baseUrl: proxy.url });
      const queue = uniqueQueue();
      await c.enqueueBatch(['a', 'b', 'c', 'd'].map((id, n) => ({ id, queue, timeout: 30, max_retries: 1, payload: { to: 'x', n } })));
      const [a, b, c2] = await c.next(queue, { numJobs: 3 });
      const before = proxy.requests.length;
      const result = await c.settleAndNext(queue, {
        numJobs: 5,
        complete: [{ queue, job_id: a!.id, run_id: a!.run_id }, { queue, job_id: c2!.id, run_id: `${c2!.run_id}0` }],
        fail: [{ queue, job_id: b!.id, run_id: b!.run_id, error: 'later', retryIn: 3600 }],
      });
      expect(proxy.requests.length - before).to.equal(1);
      const [seen] = proxy.requests.slice(before);
      expect([seen!.method, seen!.path]).to.deep.equal(['POST', '/v1/next']);
      expect(result.settled.completed).to.deep.equal([{ queue, job_id: 'a', run_id: a!.run_id }]);
      expect(result.settled.failed).to.have.length(1);
      expect(result.settled.failed[0]).to.include({ queue, job_id: 'b', run_id: b!.run_id, outcome: 'retrying' });
      expect(result.settled.not_found).to.deep.equal([{ queue, job_id: 'c', run_id: `${c2!.run_id}0` }]);
      expect(result.jobs.map((j) => [j.id, j.payload.n])).to.deep.equal([['d', 3]]);
      expect((await c.getJob(queue, 'b'))).to.include({ status: 'scheduled', retries: 1 });
    });

    it('settles only with numJobs 0, and answers no jobs (not an error) when none is available', async () => {
      const c = client();
      const queue = uniqueQueue();
      await c.enqueue({ id: 'a', queue, timeout: 30 });
      const [a] = await c.next(queue);
      expect(await c.settleAndNext(queue, { numJobs: 0, complete: [{ queue, job_id: a!.id, run_id: a!.run_id }] })).to.deep.equal({
        jobs: [],
        settled: { completed: [{ queue, job_id: 'a', run_id: a!.run_id }], failed: [], not_found: [] },
      });
      expect(await c.settleAndNext(queue)).to.deep.equal({ jobs: [], settled: { completed: [], failed: [], not_found: [] } });
    });

    it('is resent after a lost answer, settling nothing twice (the retry finds the delivery not_found)', async () => {
      const c = new RelayClient<Mail, Progress>({ baseUrl: proxy.url, retry: { initialDelayMs: 1 } });
      const queue = uniqueQueue();
      await c.enqueueBatch(['a', 'b'].map((id) => ({ id, queue, timeout: 30, max_retries: 5 })));
      const [a, b] = await c.next(queue, { numJobs: 2 });
      proxy.scriptFor('/v1/next', 'pass-then-drop');
      const uncertain: boolean[] = [];
      const result = await c.settleAndNext(queue, {
        numJobs: 0,
        complete: [{ queue, job_id: a!.id, run_id: a!.run_id }],
        fail: [{ queue, job_id: b!.id, run_id: b!.run_id, retryIn: 0 }],
        retry: { onRetry: (e) => uncertain.push(e.uncertain) },
      });
      expect(uncertain).to.deep.equal([true]);
      expect(result.settled.not_found.map((r) => r.job_id)).to.deep.equal(['a', 'b']);
      expect(await c.getJob(queue, 'b')).to.include({ status: 'waiting', retries: 1 });
    });

    it('refuses more than 1000 deliveries before any request, and a malformed one with ValidationError', async () => {
      const queue = uniqueQueue();
      const many = Array.from({ length: 1001 }, (_, i) => ({ queue, job_id: String(i), run_id: '1' }));
      const before = proxy.requests.length;
      const c = new RelayClient({ baseUrl: proxy.url });
      expect(await rejection(c.settleAndNext(queue, { complete: many }))).to.be.instanceOf(RangeError);
      expect(proxy.requests.length).to.equal(before);
      expect(await rejection(c.settleAndNext(queue, { complete: [{ queue, job_id: '', run_id: '1' }] }))).to.be.instanceOf(ValidationError);
    });
  });

  describe('fail and listFailed', () => {
    it('returns a job with retries left to its queue at now + retryIn, keeping its state', async () => {
      const c = client();
      const queue = uniqueQueue();
      await c.enqueue({ id: 'f', queue, timeout: 30, max_retries: 1, state: { sent: 9 } });
      const job = await leaseOne(c, queue);
      const before = Date.now();
      const result = await c.fail(queue, job.id, { runId: job.run_id, error: 'smtp 451', retryIn: 60 });
      expect(result.outcome).to.equal('retrying');
      if (result.outcome !== 'retrying') throw new Error('unreachable');
      expect(new Date(result.run_at).getTime()).to.be.within(before + 55_000, Date.now() + 65_000);
      expect(await c.next(queue)).to.deep.equal([]);
      expect(await c.listFailed(queue)).to.deep.equal([]);
    });

    it('moves a job without retries left to the failed jobs with the error as reason', async () => {
      const c = client();
      const queue = uniqueQueue();
      await c.enqueue({ id: 'f', queue, timeout: 30, payload: { to: 'z', n: 5 }, state: { sent: 2 } });
      const job = await leaseOne(c, queue);
      expect(await c.fail(queue, job.id, { error: 'bounced' })).to.deep.equal({ outcome: 'failed' });
      const [failed, ...rest] = await c.listFailed(queue);
      expect(rest).to.be.empty;
      expect(failed).to.include({ id: 'f', queue, reason: 'bounced', attempts: 1 });
      expect(failed!.payload).to.deep.equal({ to: 'z', n: 5 });
      expect(failed!.state).to.deep.equal({ sent: 2 });
      expect(Date.parse(failed!.failed_at)).to.be.closeTo(Date.now(), 60_000);
    });

    it('sends no body without error or retryIn', async () => {
      const c = new RelayClient({ baseUrl: proxy.url });
      const queue = uniqueQueue();
      await c.enqueue({ id: 'f', queue, timeout: 30 });
      await c.next(queue);
      expect((await c.fail(queue, 'f')).outcome).to.equal('failed');
      expect(proxy.seen('/v1/fail').at(-1)!.body).to.equal('');
    });

    it('throws JobNotFoundError for a job not in flight', async () => {
      const c = client();
      const queue = uniqueQueue();
      await c.enqueue({ id: 'f', queue, timeout: 30 });
      expect(await rejection(c.fail(queue, 'f'))).to.be.instanceOf(JobNotFoundError);
    });

    it('throws ValidationError for a negative retryIn', async () => {
      expect(await rejection(client().fail(uniqueQueue(), 'f', { retryIn: -1 }))).to.be.instanceOf(ValidationError);
    });

    it('lists failures newest first, filtered by jobId and limited', async () => {
      const c = client();
      const queue = uniqueQueue();
      for (const id of ['x', 'y', 'z']) {
        await c.enqueue({ id, queue, timeout: 30 });
        await leaseOne(c, queue);
        await c.fail(queue, id, { error: `e-${id}` });
      }
      expect((await c.listFailed(queue)).map((f) => f.id)).to.deep.equal(['z', 'y', 'x']);
      expect((await c.listFailed(queue, { limit: 2 })).map((f) => f.id)).to.deep.equal(['z', 'y']);
      expect((await c.listFailed(queue, { jobId: 'y' })).map((f) => f.reason)).to.deep.equal(['e-y']);
      expect(await rejection(c.listFailed(queue, { limit: 0 }))).to.be.instanceOf(ValidationError);
    });
  });

  describe('client options', () => {
    it('sends the given headers with every request', async () => {
      const c = new RelayClient({ baseUrl: proxy.url, headers: { authorization: 'Bearer t0ken', 'x-trace': 'abc' } });
      await c.health();
      await c.next(uniqueQueue());
      for (const path of ['/health', '/v1/next']) {
        expect(proxy.seen(path).at(-1)!.headers).to.include({ authorization: 'Bearer t0ken', 'x-trace': 'abc' });
      }
    });

    it('sends through the given fetch', async () => {
      const seen: string[] = [];
      const c = new RelayClient({
        baseUrl: relay().url,
        fetch: (request: Request) => {
          seen.push(`${request.method} ${new URL(request.url).pathname}`);
          return fetch(request);
        },
      });
      const queue = uniqueQueue();
      await c.enqueue({ id: 'a', queue, timeout: 30 });
      expect(await c.next(queue)).to.have.length(1);
      expect(seen).to.deep.equal(['POST /enqueue', 'GET /v1/next']);
    });

    it('refuses a baseUrl that is not a URL at once, with a TypeError', () => {
      expect(() => new RelayClient({ baseUrl: '127.0.0.1:8080' })).to.throw(TypeError, /baseUrl/);
    });

    it('refuses a baseUrl without an http or https scheme at once (localhost:8080 parses as scheme "localhost:")', () => {
      expect(() => new RelayClient({ baseUrl: 'localhost:8080' })).to.throw(TypeError, /baseUrl must be an http: or https: URL.*"http:\/\/localhost:8080"/);
      for (const baseUrl of ['relay.internal:8080/api', 'ftp://127.0.0.1:8080', 'file:///tmp/relay', '']) {
        expect(() => new RelayClient({ baseUrl }), baseUrl).to.throw(TypeError, /baseUrl/);
      }
      for (const baseUrl of ['http://localhost:8080', 'https://relay.example.com/api/']) expect(new RelayClient({ baseUrl }).baseUrl).to.equal(baseUrl);
    });

    it('takes a relative baseUrl in a browser page (resolved against the page), and no other scheme there either', () => {
      const g = globalThis as { location?: { href: string } };
      g.location = { href: 'https://app.example.com/admin/index.html' };
      try {
        expect(new RelayClient({ baseUrl: '/relay' }).baseUrl).to.equal('/relay');
        expect(() => new RelayClient({ baseUrl: 'localhost:8080' })).to.throw(TypeError, /baseUrl/);
      } finally {
        delete g.location;
      }
      expect(() => new RelayClient({ baseUrl: '/relay' }), 'outside a page').to.throw(TypeError, /baseUrl/);
    });

    it('rejects a payload JSON cannot hold with a TypeError, sending nothing', async () => {
      const payload: Record<string, unknown> = { n: 1n };
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      const c = new RelayClient({ baseUrl: proxy.url });
      const before = proxy.requests.length;
      for (const bad of [payload, cyclic]) {
        const err = await rejection(c.enqueue({ id: 'a', queue: uniqueQueue(), timeout: 5, payload: bad }));
        expect(err).to.be.instanceOf(TypeError);
      }
      expect(await rejection(c.heartbeat('q', 'a', { state: cyclic }))).to.be.instanceOf(TypeError);
      expect(proxy.requests.length).to.equal(before);
    });

    it('accepts a baseUrl with a trailing slash', async () => {
      expect(await new RelayClient({ baseUrl: `${relay().url}/` }).health()).to.have.property('status', 'ok');
    });
  });

  describe('health', () => {
    it('reports ok and the database the server runs on', async () => {
      expect(await client().health()).to.deep.equal({ status: 'ok', database: relay().databaseKind });
    });
  });
});
