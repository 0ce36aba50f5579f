import { expect } from 'chai';
import { JobExistsError, JobNotFoundError, RelayClient, type JobDetails } from '../../client/src/index.js';
import { relay, uniqueQueue } from '../helpers/relay.js';
import { rejection } from '../helpers/rejection.js';

interface Mail {
  to: string;
}

const client = () => new RelayClient<Mail>({ baseUrl: relay().url });

/** A job that failed for good, through the client. */
async function failed(c: RelayClient<Mail>, queue: string, id: string): Promise<void> {
  await c.enqueue({ id, queue, timeout: 30, max_retries: 0, payload: { to: `${id}@example.com` } });
  const [job] = await c.next(queue);
  expect(await c.fail(queue, id, { runId: job!.run_id, error: 'bounced' })).to.deep.equal({ outcome: 'failed' });
}

describe('RelayClient: the operations API', () => {
  it('getJob and jobExists find a job by queue and id (any characters), undefined and false once it is gone', async () => {
    const c = client();
    const queue = uniqueQueue('ops/ü');
    const id = 'a/b c%2F?';
    await c.enqueue({ id, queue, timeout: 30, payload: { to: 'x' } });
    const job = await c.getJob(queue, id);
    expect(job).to.include({ id, queue, status: 'waiting', retries: 0 });
    expect(job!.payload.to).to.equal('x');
    expect(await c.jobExists(queue, id)).to.equal(true);
    await c.cancelJob(queue, id);
    expect(await c.getJob(queue, id)).to.equal(undefined);
    expect(await c.jobExists(queue, id)).to.equal(false);
    expect(await rejection(c.cancelJob(queue, id))).to.be.instanceOf(JobNotFoundError);
  });

  it('listJobs pages with cursors; jobs() walks every page', async () => {
    const c = client();
    const queue = uniqueQueue();
    await c.enqueueBatch(Array.from({ length: 7 }, (_, i) => ({ id: `j${i}`, queue, timeout: 30, payload: { to: String(i) } })));
    const first = await c.listJobs(queue, 'waiting', { limit: 3 });
    expect(first.jobs.map((j) => j.id)).to.deep.equal(['j0', 'j1', 'j2']);
    const second = await c.listJobs(queue, 'waiting', { limit: 3, cursor: first.next_cursor });
    expect(second.jobs.map((j) => j.id)).to.deep.equal(['j3', 'j4', 'j5']);
    const all: JobDetails<Mail>[] = [];
    for await (const job of c.jobs(queue, 'waiting', { limit: 2 })) all.push(job);
    expect(all.map((j) => j.id)).to.deep.equal(['j0', 'j1', 'j2', 'j3', 'j4', 'j5', 'j6']);
  });

  it('queue, queues, pauseQueue and resumeQueue', async () => {
    const c = client();
    const queue = uniqueQueue();
    await c.enqueue({ id: 'a', queue, timeout: 30, payload: { to: 'a' } });
    expect(await c.pauseQueue(queue)).to.include({ queue, paused: true, waiting: 1 });
    expect(await c.next(queue)).to.deep.equal([]);
    expect((await c.queues()).find((q) => q.queue === queue)).to.include({ paused: true });
    expect(await c.resumeQueue(queue)).to.include({ paused: false });
    expect((await c.next(queue)).map((j) => j.id)).to.deep.equal(['a']);
    expect(await c.queue(queue)).to.include({ waiting: 0, in_flight: 1 });
  });

  it("throughput and queueThroughput: the server's counts per minute, once flushed", async () => {
    const c = client();
    const queue = uniqueQueue('tput/ü');
    await c.enqueueBatch([{ id: 'a', queue, timeout: 30, payload: { to: 'a' } }, { id: 'b', queue, timeout: 30, payload: { to: 'b' } }]);
    const [job] = await c.next(queue);
    await c.complete(queue, job!.id, { runId: job!.run_id });
    await relay().flushThroughput();
    const one = await c.queueThroughput(queue, { minutes: 5 });
    expect(one).to.deep.include({ queue, enqueued: 2, completed: 1, failed: 0 });
    expect(one.per_minute).to.have.length(5);
    expect((await c.throughput({ minutes: 5 })).find((t) => t.queue === queue)).to.deep.equal(one);
    expect((await c.queueThroughput(uniqueQueue())).per_minute).to.have.length(15);
  });

  it('retryJob, retryFailedJobs and purgeFailedJobs, with their errors', async () => {
    const c = client();
    const queue = uniqueQueue();
    await failed(c, queue, 'a');
    const back = await c.retryJob(queue, 'a');
    expect(back).to.include({ status: 'waiting', id: 'a' });
    expect(await rejection(c.retryJob(queue, 'a'))).to.be.instanceOf(JobNotFoundError);
    await c.cancelJob(queue, 'a');
    await failed(c, queue, 'b');
    await c.enqueue({ id: 'b', queue, timeout: 30, payload: { to: 'b' }, run_at: new Date(Date.now() + 3600_000) });
    expect(await rejection(c.retryJob(queue, 'b'))).to.be.instanceOf(JobExistsError);
    expect(await c.retryFailedJobs(queue, { failedBefore: new Date(Date.now() + 1000) })).to.deep.equal({ retried: 0, skipped: 1 });
    expect(await c.purgeFailedJobs(queue)).to.deep.equal({ purged: 1 });
    expect(await c.queue(queue)).to.include({ failed: 0 });
  });
});
