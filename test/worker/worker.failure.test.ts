import { expect } from 'chai';
import { call, enqueue, eventually, next, relay, uniqueQueue } from '../helpers/relay.js';
import { Recorder } from '../helpers/worker-kit.js';
import { Worker, JobSettledError, type ActiveJob } from '../../worker/src/index.js';
import type { FailResult } from '@relay-ts/client';

const failed = async (queue: string) => (await call('GET', '/v1/failed', { query: { queue } })).body as any[];

describe('Worker: failures and reschedules', () => {
  it('a throwing handler is retried with backoff, then lands in the failed jobs with the error', async function () {
    this.timeout(15_000);
    const queue = uniqueQueue('fail');
    await enqueue({ id: 'bad', queue, timeout: 30, max_retries: 2, state: { tries: 0 } });
    const attempts: Array<{ attempt: number; at: number }> = [];
    const outcomes: Array<FailResult | undefined> = [];
    const worker = new Worker({
      logger: {},
      baseUrl: relay().url,
      queue,
      process: async (job) => {
        attempts.push({ attempt: job.attempt, at: Date.now() });
        throw new Error(`boom on attempt ${job.attempt}`);
      },
    });
    worker.on('failed', (_job, _error, result) => outcomes.push(result));
    await worker.start();
    const [record] = await eventually(async () => {
      const list = await failed(queue);
      return list.length > 0 ? list : undefined;
    }, 12_000);
    await worker.stop();

    expect(attempts.map((a) => a.attempt)).to.deep.equal([1, 2, 3]);
    // The server's default backoff: 2^(attempt-1) s after attempt 1, then after attempt 2.
    expect(attempts[1]!.at - attempts[0]!.at).to.be.at.least(950);
    expect(attempts[2]!.at - attempts[1]!.at).to.be.at.least(1950);
    expect(outcomes.map((o) => o?.outcome)).to.deep.equal(['retrying', 'retrying', 'failed']);
    expect(record).to.include({ id: 'bad', reason: 'boom on attempt 3', attempts: 3 });
    expect((await next(queue)).status).to.equal(204);
  });

  it('job.fail(error, retryIn) fails at once with the given delay; process returning afterwards does not complete it', async () => {
    const queue = uniqueQueue('fail');
    await enqueue({ id: 'a', queue, timeout: 30, max_retries: 1 });
    const recorder = new Recorder();
    const seen: number[] = [];
    let afterFail: unknown;
    const worker = new Worker({
      logger: {},
      client: recorder.client(),
      queue,
      process: async (job) => {
        seen.push(job.attempt);
        if (job.attempt === 1) {
          await job.fail('not yet', 0);
          afterFail = await job.heartbeat().catch((e: unknown) => e);
        }
      },
    });
    const completed: string[] = [];
    worker.on('completed', (job) => completed.push(`${job.id}@${job.attempt}`));
    await worker.start();
    await eventually(async () => completed.length === 1, 5000);
    await worker.stop();

    expect(seen).to.deep.equal([1, 2]);
    expect(completed).to.deep.equal(['a@2']);
    expect(afterFail).to.be.instanceOf(JobSettledError);
    const fails = recorder.seen('/v1/fail');
    expect(fails).to.have.length(1);
    expect(JSON.parse(fails[0]!.body)).to.deep.equal({ error: 'not yet', retry_in: 0 });
    expect(fails[0]!.query.get('run_id')).to.be.a('string').and.not.empty;
    expect(await failed(queue)).to.deep.equal([]);
  });

  it('job.reschedule() releases the job with new settings, keeping the latest state by default', async () => {
    const queue = uniqueQueue('resched');
    await enqueue({ id: 'a', queue, timeout: 30, max_retries: 0, payload: { n: 1 } });
    const recorder = new Recorder();
    const deliveries: Array<{ attempt: number; payload: unknown; state: unknown; timeout: number }> = [];
    const worker = new Worker<{ n: number }, { saved: number }>({
      logger: {},
      client: recorder.client(),
      queue,
      process: async (job) => {
        deliveries.push({ attempt: job.attempt, payload: job.payload, state: job.state, timeout: job.timeout });
        if (deliveries.length === 1) {
          await job.heartbeat({ saved: 7 });
          await job.reschedule({ run_at: new Date(Date.now() + 300), payload: { n: 2 }, timeout: 20 });
        }
      },
    });
    const events: string[] = [];
    worker.on('rescheduled', (job) => events.push(`rescheduled ${job.id}`));
    worker.on('completed', (job) => events.push(`completed ${job.id}`));
    await worker.start();
    await eventually(async () => events.length === 2, 5000);
    await worker.stop();

    expect(events).to.deep.equal(['rescheduled a', 'completed a']);
    expect(deliveries).to.deep.equal([
      { attempt: 1, payload: { n: 1 }, state: undefined, timeout: 30 },
      { attempt: 1, payload: { n: 2 }, state: { saved: 7 }, timeout: 20 },
    ]);
    const [sent] = recorder.seen('/reschedule', 'POST');
    expect(JSON.parse(sent!.body)).to.include({ id: 'a', queue, timeout: 20, max_retries: 0 }).and.have.property('run_id').that.is.a('string');
  });

  it('sends what a thrown non-Error or an unstorable message says, as text the database accepts', async () => {
    const queue = uniqueQueue('fail');
    await enqueue({ id: 'str', queue, timeout: 30 });
    await enqueue({ id: 'obj', queue, timeout: 30 });
    await enqueue({ id: 'nul', queue, timeout: 30 });
    const worker = new Worker({
      logger: {},
      client: new Recorder().client(),
      queue,
      concurrency: 3,
      process: async (job: ActiveJob) => {
        if (job.id === 'str') throw 'plain string';
        if (job.id === 'obj') throw { code: 42 };
        throw new Error('a\u0000b \ud800');
      },
    });
    await worker.start();
    const list = await eventually(async () => {
      const l = await failed(queue);
      return l.length === 3 ? l : undefined;
    }, 5000);
    await worker.stop();
    const reasons = Object.fromEntries(list.map((f) => [f.id, f.reason]));
    expect(reasons).to.deep.equal({ str: 'plain string', obj: '{"code":42}', nul: 'a\uFFFDb \uFFFD' });
  });
});
