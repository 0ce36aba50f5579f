import { expect } from 'chai';
import { drain, enqueue, enqueueBatch, eventually, next, sleep, uniqueQueue } from '../helpers/relay.js';
import { Recorder, gate, holdsNoJob, within } from '../helpers/worker-kit.js';
import { Worker, WorkerStoppedError } from '../../worker/src/index.js';

describe('Worker: stop()', () => {
  it('lets the running jobs finish and takes no new ones', async () => {
    const queue = uniqueQueue('stop');
    await enqueueBatch(Array.from({ length: 5 }, (_, i) => ({ id: `j${i}`, queue, timeout: 30 })));
    const started: string[] = [];
    const finished: string[] = [];
    const completed: string[] = [];
    const worker = new Worker({
      logger: {},
      client: new Recorder().client(),
      queue,
      concurrency: 2,
      process: async (job) => {
        started.push(job.id);
        await sleep(600);
        finished.push(job.id);
      },
    });
    worker.on('completed', (job) => completed.push(job.id));
    await worker.start();
    await eventually(async () => started.length === 2, 3000);

    expect(finished, 'still running when stop() is called').to.deep.equal([]);
    await worker.stop();
    expect(started).to.deep.equal(['j0', 'j1']);
    expect(finished).to.deep.equal(['j0', 'j1']);
    expect(completed.sort()).to.deep.equal(['j0', 'j1']);
    expect(worker.status).to.equal('idle');
    // The others are untouched: still waiting, on their first delivery.
    const left = await drain(queue);
    expect(left.map((j) => [j.id, j.attempt])).to.deep.equal([['j2', 1], ['j3', 1], ['j4', 1]]);
  });

  it('ends an idle long poll at once', async () => {
    const queue = uniqueQueue('stop');
    const recorder = new Recorder();
    const worker = new Worker({ logger: {}, client: recorder.client(), queue, waitSeconds: 30, process: async () => undefined });
    let pollEnded = false;
    recorder.onResponse = () => (pollEnded = true);
    await worker.start();
    // Well before the poll's 30 s would end on its own: the bound of a wait, not a timing claim.
    await within(worker.stop(), 10_000, 'stop()');
    expect(pollEnded, 'the poll under way was ended').to.equal(true);
    expect(recorder.polls()).to.have.length(1);
    // A job enqueued now stays for others: the aborted poll took nothing. (The pause lets the
    // server see the disconnect first, which no API shows: a job it hands to a poll whose
    // client has just gone is lost until its lease expires.)
    await sleep(300);
    await enqueue({ id: 'later', queue, timeout: 30 });
    const taken = await eventually(async () => (await drain(queue)).map((j) => [j.id, j.attempt]).at(0));
    expect(taken).to.deep.equal(['later', 1]);
  });

  it('after shutdownTimeoutMs, aborts the signals of jobs still running and returns; they stay leased', async function () {
    this.timeout(10_000);
    const queue = uniqueQueue('stop');
    await enqueue({ id: 'stuck', queue, timeout: 2, max_retries: 1 });
    const recorder = new Recorder();
    const handlerDone = gate();
    let handlerReturned = false;
    let reason: unknown;
    const worker = new Worker({
      logger: {},
      client: recorder.client(),
      queue,
      shutdownTimeoutMs: 300,
      process: async (job) => {
        job.signal.addEventListener('abort', () => (reason = job.signal.reason));
        await sleep(1500); // ignores the signal, then returns as if it had finished
        handlerReturned = true;
        handlerDone.open();
      },
    });
    const started = gate();
    worker.on('started', () => started.open());
    await worker.start();
    await started.promise;

    await worker.stop();
    expect(handlerReturned, 'stop() returned before the handler').to.equal(false);
    expect(reason).to.be.instanceOf(WorkerStoppedError);
    expect((await next(queue)).status, 'still leased').to.equal(204);
    await handlerDone.promise;
    await eventually(async () => holdsNoJob(worker));
    // No more heartbeats: the lease runs out and the job comes back.
    const again = await eventually(async () => (await drain(queue))[0], 4000);
    expect(again).to.include({ id: 'stuck', attempt: 2 });
    expect(recorder.seen('/v1/complete/batch')).to.deep.equal([]);
    expect(recorder.seen('/v1/complete')).to.deep.equal([]);
    expect(recorder.seen('/v1/fail')).to.deep.equal([]);
  });

  it('a prefetched job still waiting for its slot when shutdownTimeoutMs ends never starts, and stays leased', async function () {
    this.timeout(10_000);
    const queue = uniqueQueue('stop');
    await enqueue({ id: 'first', queue, timeout: 2, max_retries: 1 });
    await enqueue({ id: 'second', queue, timeout: 2, max_retries: 1 });
    const recorder = new Recorder();
    const startedIds: string[] = [];
    const firstReturned = gate();
    const worker = new Worker({
      logger: {},
      client: recorder.client(),
      queue,
      concurrency: 1,
      prefetch: 1,
      shutdownTimeoutMs: 300,
      process: async () => {
        await sleep(1500);
        firstReturned.open();
      },
    });
    worker.on('started', (job) => startedIds.push(job.id));
    await worker.start();
    await eventually(async () => worker.jobs.waiting === 1, 3000);
    await worker.stop();
    // The first handler returns and frees the slot the prefetched job waited for.
    await firstReturned.promise;
    await eventually(async () => holdsNoJob(worker));
    // Neither was completed or failed: both come back when their leases run out.
    const back: string[] = [];
    await eventually(async () => {
      back.push(...(await drain(queue)).map((j) => j.id));
      return back.length >= 2;
    }, 4000);
    expect(back.sort()).to.deep.equal(['first', 'second']);
    expect(startedIds).to.deep.equal(['first']);
    expect(recorder.seen('/v1/complete/batch')).to.deep.equal([]);
  });

  it('stop() twice returns the same promise; start() again afterwards polls again', async () => {
    const queue = uniqueQueue('stop');
    const done: string[] = [];
    const worker = new Worker({ logger: {}, client: new Recorder().client(), queue, waitSeconds: 5, process: async (job) => void done.push(job.id) });
    await worker.start();
    const again = await worker.start().then(() => undefined, (e: unknown) => e);
    expect(again).to.be.instanceOf(Error).with.property('message').that.matches(/already running/);
    const first = worker.stop();
    expect(worker.stop()).to.equal(first);
    await first;
    await sleep(300); // the server sees the aborted poll's disconnect, which no API shows (see above)
    await worker.start();
    await enqueue({ id: 'x', queue, timeout: 30 });
    await eventually(async () => done.length === 1, 3000);
    await worker.stop();
    expect(done).to.deep.equal(['x']);
  });
});
