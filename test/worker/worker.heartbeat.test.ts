import { expect } from 'chai';
import { call, complete, drain, enqueue, eventually, heartbeat, next, sleep, uniqueQueue } from '../helpers/relay.js';
import { Recorder, gate, holdsNoJob } from '../helpers/worker-kit.js';
import { Worker, LeaseLostError, type ActiveJob } from '../../worker/src/index.js';

const failed = async (queue: string) => (await call('GET', '/v1/failed', { query: { queue } })).body as unknown[];

describe('Worker: heartbeats', () => {
  it('keeps a job running 3.5 times its timeout from being delivered again', async function () {
    this.timeout(25_000);
    const queue = uniqueQueue('hb');
    // A 2 s lease (not 1 s) so that a loaded machine delaying one heartbeat does not lose it.
    await enqueue({ id: 'long', queue, timeout: 2, max_retries: 5 });
    const recorder = new Recorder();
    const runs: number[] = [];
    const worker = new Worker({
      logger: {},
      client: recorder.client(),
      queue,
      concurrency: 2,
      process: async (job) => {
        runs.push(job.attempt);
        await sleep(7000);
      },
    });
    let completed = 0;
    worker.on('completed', () => completed++);
    const started = gate();
    worker.on('started', () => started.open());
    await worker.start();
    // start() resolves once the first poll is sent, not once the server has it: the other
    // consumer below could otherwise take the job first.
    await started.promise;

    // Meanwhile another consumer polls the queue: it must never get the job.
    let stolen = 0;
    const until = Date.now() + 7100;
    while (Date.now() < until) {
      const res = await next(queue);
      if (res.status === 200) stolen++;
      await sleep(100);
    }
    await eventually(async () => completed === 1, 3000);
    await worker.stop();

    expect(stolen, 'deliveries to the other consumer').to.equal(0);
    expect(runs).to.deep.equal([1]);
    // A heartbeat every third of the timeout (667 ms) for 7 s, each naming the delivery.
    const beats = recorder.seen('/v1/heartbeat', 'PATCH');
    expect(beats.length).to.be.within(8, 12);
    expect(new Set(beats.map((b) => b.query.get('run_id'))).size).to.equal(1);
    expect((await next(queue)).status).to.equal(204);
    expect(await failed(queue)).to.deep.equal([]);
  });

  it('checkpoints with job.heartbeat(state), and the interval heartbeats send the latest state', async () => {
    const queue = uniqueQueue('hb');
    await enqueue({ id: 'a', queue, timeout: 30, max_retries: 3, state: { step: 0 } });
    const recorder = new Recorder();
    const states: unknown[] = [];
    const worker = new Worker<null, { step: number }>({
      logger: {},
      client: recorder.client(),
      queue,
      heartbeatIntervalMs: 150,
      process: async (job) => {
        states.push(job.state);
        if (job.attempt === 1) {
          await job.heartbeat({ step: 1 });
          expect(job.state).to.deep.equal({ step: 1 });
          await sleep(350); // two interval heartbeats
          await job.fail(new Error('again'), 0);
        }
      },
    });
    await worker.start();
    await eventually(async () => states.length === 2, 5000);
    await worker.stop();

    expect(states).to.deep.equal([{ step: 0 }, { step: 1 }]);
    const beats = recorder.seen('/v1/heartbeat', 'PATCH');
    expect(beats.length).to.be.at.least(3);
    for (const beat of beats.slice(0, 3)) {
      expect(JSON.parse(beat.body)).to.deep.equal({ step: 1 });
      expect(beat.query.get('run_id')).to.be.a('string').and.not.empty;
    }
  });

  it('sends no state before the handler gives one, so the stored state is kept', async () => {
    const queue = uniqueQueue('hb');
    await enqueue({ id: 'a', queue, timeout: 30, max_retries: 3, state: { keep: true } });
    const recorder = new Recorder();
    const worker = new Worker({ logger: {}, client: recorder.client(), queue, heartbeatIntervalMs: 100, process: async () => { await sleep(250); } });
    let completed = false;
    worker.on('completed', () => (completed = true));
    await worker.start();
    await eventually(async () => completed, 5000);
    await worker.stop();
    const beats = recorder.seen('/v1/heartbeat', 'PATCH');
    expect(beats.length).to.be.at.least(1);
    expect(beats.every((b) => b.body === '')).to.equal(true);
  });

  it('a job with the longest timeout gets its first heartbeat in weeks, not a storm of them', async () => {
    const queue = uniqueQueue('hb');
    await enqueue({ id: 'a', queue, timeout: 2_147_483_647 });
    const recorder = new Recorder();
    // A third of that timeout is past what setTimeout takes (it would fire after 1 ms).
    const worker = new Worker({ logger: {}, client: recorder.client(), queue, shutdownTimeoutMs: Infinity, process: async () => { await sleep(300); } });
    let completed = 0;
    worker.on('completed', () => completed++);
    await worker.start();
    await eventually(async () => completed === 1, 3000);
    await worker.stop();
    expect(recorder.seen('/v1/heartbeat')).to.deep.equal([]);
  });

  it('a heartbeat answered 404 aborts job.signal, and the job is neither completed nor failed', async function () {
    this.timeout(10_000);
    const queue = uniqueQueue('hb');
    await enqueue({ id: 'a', queue, timeout: 30, max_retries: -1 });
    const recorder = new Recorder();
    const handlerDone = gate();
    const started = gate();
    let reason: unknown;
    const lost: ActiveJob[] = [];
    const worker = new Worker({
      logger: {},
      client: recorder.client(),
      queue,
      heartbeatIntervalMs: 1500,
      process: async (job) => {
        started.open();
        await new Promise((resolve) => job.signal.addEventListener('abort', resolve));
        reason = job.signal.reason;
        handlerDone.open();
      },
    });
    worker.on('leaseLost', (job) => lost.push(job));
    await worker.start();
    try {
      // Another consumer takes the job before the worker's first heartbeat: it fails it
      // without naming the delivery, and leases it again.
      await started.promise;
      expect((await call('POST', '/v1/fail', { query: { queue, job_id: 'a' }, json: { retry_in: 0 } })).status).to.equal(202);
      const other = (await drain(queue))[0];
      expect(other.attempt).to.equal(2);
      await heartbeat(queue, 'a', { state: 'other', run_id: other.run_id });
      await handlerDone.promise;
      await eventually(async () => holdsNoJob(worker));

      expect(reason).to.be.instanceOf(LeaseLostError);
      expect(lost.map((j) => j.id)).to.deep.equal(['a']);
      expect(recorder.seen('/v1/heartbeat')).to.have.length(1);
      expect(recorder.seen('/v1/complete/batch')).to.deep.equal([]);
      expect(recorder.seen('/v1/complete')).to.deep.equal([]);
      expect(recorder.seen('/v1/fail')).to.deep.equal([]);
      // The other consumer still holds the job.
      expect((await heartbeat(queue, 'a', { run_id: other.run_id })).status).to.equal(202);
      expect((await complete(queue, 'a', other.run_id)).status).to.equal(200);
    } finally {
      await worker.stop();
    }
  });
});
