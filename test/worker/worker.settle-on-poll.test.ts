import { expect } from 'chai';
import { RelayClient } from '@relay-ts/client';
import { TestProxy } from '../helpers/proxy.js';
import { drain, enqueueBatch, eventually, relay, sleep, uniqueQueue } from '../helpers/relay.js';
import { holdsNoJob, Recorder } from '../helpers/worker-kit.js';
import { Worker } from '../../worker/src/index.js';

/*
 * settleOnPoll (the default): the completions of finished jobs ride on the poll for the next
 * ones (POST /v1/next) instead of a request of their own, when a poll is about to be sent;
 * while a poll is already under way (a long poll on an idle queue) they go on their own at
 * once. Either way every job is completed exactly once.
 */

/** Runs a worker over `jobs` jobs of a fresh queue until all are completed; returns what it sent and saw. */
async function runBacklog(jobs: number, options: { settleOnPoll: boolean; concurrency: number; prefetch?: number | 'auto'; completionBatchWindowMs?: number }) {
  const queue = uniqueQueue('settle');
  await enqueueBatch(Array.from({ length: jobs }, (_, i) => ({ id: `j${i}`, queue, timeout: 30 })));
  const recorder = new Recorder();
  const completed = new Map<string, number>();
  const lost: string[] = [];
  const worker = new Worker({
    logger: {},
    client: recorder.client(),
    queue,
    waitSeconds: 1,
    // No jobs leased ahead: with prefetch 'auto' one poll may lease the whole backlog, and the
    // completions then go in batches of their own while the next poll waits on an empty queue.
    prefetch: 0,
    ...options,
    process: async () => {
      await sleep(1);
    },
  });
  worker.on('completed', (job) => completed.set(job.id, (completed.get(job.id) ?? 0) + 1));
  worker.on('leaseLost', (job) => lost.push(job.id));
  await worker.start();
  await eventually(async () => completed.size === jobs && holdsNoJob(worker), 20_000, 10);
  const calls = recorder.calls.length;
  await worker.stop();
  return { queue, recorder, completed, lost, calls };
}

describe('Worker: completions ride on the next poll (settleOnPoll)', () => {
  it('uses one request per job instead of two under a backlog, completing each job once', async function () {
    this.timeout(60_000);
    const jobs = 30;
    const on = await runBacklog(jobs, { settleOnPoll: true, concurrency: 1 });
    const off = await runBacklog(jobs, { settleOnPoll: false, concurrency: 1 });
    for (const run of [on, off]) {
      expect([...run.completed.values()].every((n) => n === 1), 'each job completed once').to.equal(true);
      expect(run.lost).to.deep.equal([]);
      expect(await drain(run.queue), 'nothing left in the queue').to.deep.equal([]);
    }
    // On: the first poll, then one POST /v1/next per job carrying its completion (the last one
    // answers no job), then the long poll that stop() ends.
    const carried = on.recorder.seen('/v1/next', 'POST').flatMap((c) => JSON.parse(c.body) as Array<{ job_id: string }>);
    expect(carried.map((r) => r.job_id).sort()).to.deep.equal(Array.from({ length: jobs }, (_, i) => `j${i}`).sort());
    expect(on.recorder.seen('/v1/complete/batch').concat(on.recorder.seen('/v1/complete'))).to.deep.equal([]);
    expect(on.calls, 'requests with completions on the poll').to.be.at.most(jobs + 2);
    // Off: a poll and a completion per job.
    expect(off.recorder.seen('/v1/next', 'POST')).to.deep.equal([]);
    expect(off.calls, 'requests with completions on their own').to.be.at.least(2 * jobs);
  });

  it('at concurrency 8, completes every job once with fewer requests than jobs plus completions', async function () {
    this.timeout(60_000);
    const jobs = 80;
    const run = await runBacklog(jobs, { settleOnPoll: true, concurrency: 8 });
    expect([...run.completed.values()].every((n) => n === 1)).to.equal(true);
    expect(run.lost).to.deep.equal([]);
    expect(await drain(run.queue)).to.deep.equal([]);
    const carried = run.recorder.seen('/v1/next', 'POST').reduce((n, c) => n + (JSON.parse(c.body) as unknown[]).length, 0);
    const alone = run.recorder.seen('/v1/complete/batch').reduce((n, c) => n + (JSON.parse(c.body) as unknown[]).length, 0);
    expect(carried + alone, 'every completion sent once').to.equal(jobs);
    expect(carried, 'most completions rode on a poll').to.be.greaterThan(jobs / 2);
  });

  it('with no completion window and many jobs in hand, sends the completions no poll carried together, not one request each', async function () {
    this.timeout(60_000);
    const jobs = 300;
    // Jobs leased far ahead of the slots finish many at a time, more than a poll takes.
    const on = await runBacklog(jobs, { settleOnPoll: true, concurrency: 8, prefetch: 200, completionBatchWindowMs: 0 });
    const off = await runBacklog(jobs, { settleOnPoll: false, concurrency: 8, prefetch: 200, completionBatchWindowMs: 0 });
    for (const run of [on, off]) {
      expect([...run.completed.values()].every((n) => n === 1), 'each job completed once').to.equal(true);
      expect(run.completed.size).to.equal(jobs);
      expect(run.lost).to.deep.equal([]);
      expect(await drain(run.queue)).to.deep.equal([]);
    }
    const ids = (calls: Array<{ body: string }>) => calls.flatMap((c) => (JSON.parse(c.body) as Array<{ job_id: string }>).map((r) => r.job_id));
    const carried = ids(on.recorder.seen('/v1/next', 'POST'));
    const batched = ids(on.recorder.seen('/v1/complete/batch'));
    const alone = on.recorder.seen('/v1/complete', 'DELETE');
    expect(carried.length + batched.length + alone.length, 'every completion sent once').to.equal(jobs);
    expect(alone.length, 'completions sent one request each').to.be.below(jobs / 10);
    expect(on.calls, 'requests in all').to.be.below(jobs / 4);
    // Off, with no window, each goes alone (the seed's route), as before.
    expect(off.recorder.seen('/v1/complete', 'DELETE')).to.have.length(jobs);
    expect(off.recorder.seen('/v1/complete/batch')).to.deep.equal([]);
  });

  it('on a quiet queue, does not put off the long poll to carry a completion: the completion goes beside it', async function () {
    this.timeout(20_000);
    const queue = uniqueQueue('quiet');
    const recorder = new Recorder();
    const worker = new Worker({ logger: {}, client: recorder.client(), queue, concurrency: 4, waitSeconds: 30, process: async () => undefined });
    const completed: string[] = [];
    worker.on('completed', (job) => completed.push(job.id));
    await worker.start();
    try {
      // One job at a time, each answered to a long poll that asked for more: no backlog.
      for (const id of ['a', 'b', 'c']) {
        await enqueueBatch([{ id, queue, timeout: 30 }]);
        await eventually(async () => completed.includes(id), 5_000, 5);
      }
      expect(recorder.seen('/v1/next', 'POST'), 'no poll carried a completion').to.deep.equal([]);
      expect(recorder.seen('/v1/complete', 'DELETE').length + recorder.seen('/v1/complete/batch').length).to.equal(3);
      expect(await drain(queue)).to.deep.equal([]);
    } finally {
      await worker.stop();
    }
  });

  it('does not hold a completion while a long poll is under way: it goes on its own at once', async function () {
    this.timeout(20_000);
    const queue = uniqueQueue('idle');
    const recorder = new Recorder();
    // The job takes long enough for the worker's next long poll to be under way when it ends.
    const worker = new Worker({ logger: {}, client: recorder.client(), queue, concurrency: 2, waitSeconds: 30, process: async () => {
      await sleep(300);
    } });
    const completedAt: number[] = [];
    worker.on('completed', () => completedAt.push(Date.now()));
    await worker.start();
    try {
      await enqueueBatch([{ id: 'a', queue, timeout: 30 }]);
      const enqueuedAt = Date.now();
      await eventually(async () => completedAt.length === 1, 5_000, 10);
      expect(completedAt[0]! - enqueuedAt, 'completed long before the 30 s long poll ends').to.be.below(3_000);
      expect(recorder.seen('/v1/complete/batch').map((c) => (JSON.parse(c.body) as Array<{ job_id: string }>).map((r) => r.job_id))).to.deep.equal([['a']]);
      expect(recorder.seen('/v1/next', 'POST')).to.deep.equal([]);
      expect(await drain(queue)).to.deep.equal([]);
    } finally {
      await worker.stop();
    }
  });

  describe('when the poll that carries completions fails', () => {
    let proxy: TestProxy;
    beforeEach(async () => {
      proxy = await TestProxy.start(relay().url);
    });
    afterEach(() => proxy.close());

    async function run(queue: string, replies: Parameters<TestProxy['scriptFor']>[1][], completionBatchWindowMs?: number) {
      // Short leases: a job leased to a poll whose answer was lost comes back soon.
      await new RelayClient({ baseUrl: relay().url }).enqueueBatch(['a', 'b'].map((id) => ({ id, queue, timeout: 2, max_retries: 3 })));
      const events: string[] = [];
      const warnings: string[] = [];
      // The first poll (GET) passes; the next request to /v1/next, the POST carrying a's completion, gets the reply.
      proxy.scriptFor('/v1/next', 'pass', ...replies);
      const worker = new Worker({
        client: new RelayClient({ baseUrl: proxy.url, retry: { maxAttempts: 1 } }),
        queue,
        waitSeconds: 1,
        pollIntervalMs: 10,
        ...(completionBatchWindowMs === undefined ? {} : { completionBatchWindowMs }),
        logger: { warn: (message) => warnings.push(message) },
        process: async () => undefined,
      });
      for (const event of ['completed', 'leaseLost', 'requestError'] as const) worker.on(event, (job: { id: string }) => events.push(`${event} ${job.id}`));
      await worker.start();
      await eventually(async () => events.length >= 2, 15_000, 20);
      await worker.stop();
      return { events, warnings };
    }

    it('whose answer was lost: the completion goes again on its own, and the job found gone counts as completed', async function () {
      this.timeout(20_000);
      const queue = uniqueQueue('lost-answer');
      const { events } = await run(queue, ['pass-then-drop']);
      expect(events.sort()).to.deep.equal(['completed a', 'completed b']);
      // Sent twice: on the poll (applied, answer lost), then alone (found gone).
      const alone = proxy.seen('/v1/complete/batch').flatMap((c) => JSON.parse(c.body) as Array<{ job_id: string }>);
      expect(alone.map((r) => r.job_id)).to.include('a');
      expect(await drain(queue)).to.deep.equal([]);
    });

    it('on a server without POST /v1/next: plain polls from then on, completions on their own', async function () {
      this.timeout(20_000);
      const queue = uniqueQueue('old-server');
      const refused = { status: 405, body: { type: 'urn:relay-ts:problem:method-not-allowed', title: 'Method Not Allowed', status: 405, detail: 'no POST here' } };
      const { events, warnings } = await run(queue, [refused]);
      expect(events.sort()).to.deep.equal(['completed a', 'completed b']);
      expect(warnings.filter((w) => /no POST \/v1\/next/.test(w))).to.have.length(1);
      expect(proxy.seen('/v1/next').filter((c) => c.method === 'POST'), 'tried once').to.have.length(1);
      expect(await drain(queue)).to.deep.equal([]);
    });

    it('on a server without POST /v1/next and no completion window: each completion alone, as the seed has it', async function () {
      this.timeout(20_000);
      const queue = uniqueQueue('old-server-each');
      const refused = { status: 404, body: { type: 'urn:relay-ts:problem:route-not-found', title: 'Not Found', status: 404, detail: 'no such route' } };
      const { events } = await run(queue, [refused], 0);
      expect(events.sort()).to.deep.equal(['completed a', 'completed b']);
      // a's completion, carried by the refused poll, goes alone too.
      expect(proxy.seen('/v1/complete').filter((c) => c.method === 'DELETE'), 'one DELETE per job').to.have.length(2);
      expect(proxy.seen('/v1/complete/batch')).to.deep.equal([]);
      expect(await drain(queue)).to.deep.equal([]);
    });
  });
});
