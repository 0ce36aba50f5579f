import { expect } from 'chai';
import { enqueue, enqueueBatch, eventually, relay, sleep, uniqueQueue } from '../helpers/relay.js';
import { Recorder } from '../helpers/worker-kit.js';
import { Worker, workerDefaults, type ActiveJob, type Logger, type WorkerOptions } from '../../worker/src/index.js';
import { rejection } from '../helpers/rejection.js';


describe('Worker: options, events and logging', () => {
  it('a subclass gives its defaults through super(); the options are readable as settings inside process', async () => {
    const queue = uniqueQueue('subclass');
    const recorder = new Recorder();
    const seen: string[] = [];
    const settingsSeen: Array<[string, number, number]> = [];
    class Mailer extends Worker<{ to: string }> {
      constructor(options: Partial<WorkerOptions<{ to: string }>> = {}) {
        super({ client: recorder.client<{ to: string }>(), queue, concurrency: 2, waitSeconds: 0, completionBatchWindowMs: 0, settleOnPoll: false, logger: {}, ...options });
      }

      override async process(job: ActiveJob<{ to: string }>): Promise<void> {
        seen.push(job.payload.to);
        settingsSeen.push([this.settings.queue, this.settings.concurrency, this.settings.waitSeconds]);
      }
    }
    await enqueueBatch(['a', 'b', 'c', 'd'].map((to) => ({ id: to, queue, timeout: 30, payload: { to } })));
    const worker = new Mailer({ concurrency: 3 });
    expect(worker.settings).to.include({ queue, concurrency: 3, prefetch: 'auto', waitSeconds: 0, pollIntervalMs: 100, shutdownTimeoutMs: 25_000 });
    expect(Object.isFrozen(worker.settings)).to.equal(true);
    await worker.start();
    await eventually(async () => recorder.seen('/v1/complete', 'DELETE').length === 4, 5000);
    await worker.stop();

    expect(seen.sort()).to.deep.equal(['a', 'b', 'c', 'd']);
    expect(settingsSeen).to.deep.equal(Array(4).fill([queue, 3, 0]));
    const [first] = recorder.polls();
    expect(first!.query.get('num_jobs'), 'concurrency from the constructor').to.equal('3');
    expect(first!.query.get('wait'), 'waitSeconds from the subclass').to.equal('0');
    expect(recorder.seen('/v1/complete/batch'), 'no batching: window 0 from the subclass').to.deep.equal([]);
    for (const call of recorder.seen('/v1/complete', 'DELETE')) expect(call.query.get('run_id')).to.be.a('string').and.not.empty;
  });

  it('refuses missing or out-of-range options in the constructor', () => {
    const base: WorkerOptions = { baseUrl: relay().url, queue: 'q' };
    const cases: Array<[WorkerOptions, RegExp]> = [
      [{ baseUrl: relay().url } as WorkerOptions, /queue/],
      [{ queue: 'q' }, /baseUrl/],
      [{ ...base, concurrency: 0 }, /concurrency/],
      [{ ...base, concurrency: 1.5 }, /concurrency/],
      [{ ...base, prefetch: -1 }, /prefetch/],
      [{ ...base, prefetch: 1001 }, /prefetch/],
      [{ ...base, prefetch: 'always' as never }, /prefetch/],
      [{ ...base, waitSeconds: 61 }, /waitSeconds/],
      [{ ...base, pollIntervalMs: 0 }, /pollIntervalMs/],
      [{ ...base, pollIntervalMs: 200, maxPollIntervalMs: 100 }, /maxPollIntervalMs/],
      [{ ...base, heartbeatIntervalMs: -1 }, /heartbeatIntervalMs/],
      [{ ...base, completionBatchWindowMs: -1 }, /completionBatchWindowMs/],
      [{ ...base, settleOnPoll: 'yes' as unknown as boolean }, /settleOnPoll/],
      [{ ...base, process: 'not a function' as never }, /process/],
    ];
    for (const [options, message] of cases) {
      expect(() => new Worker(options), JSON.stringify(options)).to.throw(TypeError).with.property('message').that.matches(message);
    }
    expect(workerDefaults).to.include({ concurrency: 1, prefetch: 'auto', waitSeconds: 30, pollIntervalMs: 100, maxPollIntervalMs: 5000, shutdownTimeoutMs: 25_000, completionBatchWindowMs: 5, settleOnPoll: true });
  });

  it('start() refuses a worker without process, or with it both as an option and as a method', async () => {
    const options = { baseUrl: relay().url, queue: uniqueQueue('noproc'), logger: {} };
    const none = new Worker(options);
    expect(await rejection(none.start())).to.be.instanceOf(TypeError).with.property('message').that.matches(/no process/);
    expect(none.status).to.equal('idle');
    class Both extends Worker {
      override async process(): Promise<void> {}
    }
    const both = new Both({ ...options, process: async () => undefined });
    expect(await rejection(both.start())).to.be.instanceOf(TypeError).with.property('message').that.matches(/not both/);
    expect(both.status).to.equal('idle');
  });

  /**
   * Runs n jobs of a new queue through a worker of concurrency n, completions on their own (not
   * on polls: see worker.settle-on-poll.test.ts); the batch completion requests it sent.
   */
  async function completionBatches(n: number, handler: () => Promise<void>): Promise<Array<Array<{ job_id: string; run_id?: string }>>> {
    const queue = uniqueQueue('batch');
    await enqueueBatch(Array.from({ length: n }, (_, i) => ({ id: `j${i}`, queue, timeout: 30 })));
    const recorder = new Recorder();
    const worker = new Worker({ logger: {}, client: recorder.client(), queue, concurrency: n, settleOnPoll: false, process: handler });
    let completed = 0;
    worker.on('completed', () => completed++);
    await worker.start();
    await eventually(async () => completed === n, 5000);
    await worker.stop();
    expect(recorder.seen('/v1/complete', 'DELETE')).to.deep.equal([]);
    return recorder.seen('/v1/complete/batch').map((b) => JSON.parse(b.body) as Array<{ job_id: string; run_id?: string }>);
  }

  it('coalesces completions that come close together into one POST /v1/complete/batch', async () => {
    const batches = await completionBatches(10, async () => {
      await sleep(20);
    });
    expect(batches.length).to.be.within(1, 3);
    const refs = batches.flat();
    expect(refs.map((r) => r.job_id).sort()).to.deep.equal(Array.from({ length: 10 }, (_, i) => `j${i}`).sort());
    expect(refs.every((r) => typeof r.run_id === 'string')).to.equal(true);
  });

  it('coalesces the completions of jobs that finish at once, even when no handler is left running', async () => {
    const batches = await completionBatches(50, async () => undefined);
    const sizes = batches.map((b) => b.length);
    expect(sizes.reduce((a, b) => a + b, 0)).to.equal(50);
    expect(batches.length, `batch sizes ${sizes.join(', ')}`).to.be.at.most(3);
  });

  it('emits started, completed, failed and rescheduled; a listener that throws does not break the worker', async () => {
    const queue = uniqueQueue('events');
    await enqueue({ id: 'ok', queue, timeout: 30 });
    await enqueue({ id: 'bad', queue, timeout: 30, max_retries: 0 });
    await enqueue({ id: 'later', queue, timeout: 30 });
    const events: string[] = [];
    const worker = new Worker({
      logger: {},
      client: new Recorder().client(),
      queue,
      concurrency: 1,
      process: async (job) => {
        if (job.id === 'bad') throw new Error('nope');
        if (job.id === 'later' && job.attempt === 1 && !job.state) await job.reschedule({ state: { again: true } });
      },
    });
    worker.on('started', (job) => events.push(`started ${job.id}`));
    worker.on('started', () => {
      throw new Error('a listener bug');
    });
    worker.on('completed', (job, ms) => events.push(`completed ${job.id} ${typeof ms}`));
    worker.on('failed', (job, error, result) => events.push(`failed ${job.id} ${(error as Error).message} ${result?.outcome}`));
    worker.on('rescheduled', (job) => events.push(`rescheduled ${job.id}`));
    await worker.start();
    await eventually(async () => events.filter((e) => !e.startsWith('started')).length === 4, 5000);
    await worker.stop();
    // Jobs start in queue order; a job's outcome may land after the next job started (its
    // slot is free once its handler returned), so the order is checked per job.
    expect(events.filter((e) => e.startsWith('started'))).to.deep.equal(['started ok', 'started bad', 'started later', 'started later']);
    const of = (id: string) => events.filter((e) => e.split(' ')[1] === id);
    expect(of('ok')).to.deep.equal(['started ok', 'completed ok number']);
    expect(of('bad')).to.deep.equal(['started bad', 'failed bad nope failed']);
    expect(of('later')).to.deep.equal(['started later', 'rescheduled later', 'started later', 'completed later number']);
  });

  it('logs through the injected logger, a job failed for good at error with its error as a plain object', async () => {
    const queue = uniqueQueue('log');
    await enqueue({ id: 'bad', queue, timeout: 30 });
    const lines: string[] = [];
    const fields: Record<string, Record<string, unknown> | undefined> = {};
    const record = (level: string) => (message: string, f?: Record<string, unknown>) => {
      lines.push(`${level} ${message}`);
      fields[message] = f;
    };
    const logger: Logger = { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') };
    const logged = new Worker({
      client: new Recorder().client(),
      queue,
      logger,
      process: async () => {
        throw new Error('x');
      },
    });
    await logged.start();
    try {
      await eventually(async () => lines.some((l) => l.startsWith('error job failed')), 3000);
    } finally {
      await logged.stop();
    }
    expect(lines).to.include.members([
      'info worker started', 'debug job started', 'error job failed for good: moved to the failed jobs', 'info worker stopping', 'info worker stopped',
    ]);
    const failure = fields['job failed for good: moved to the failed jobs']!;
    expect(failure).to.include({ queue, jobId: 'bad', attempt: 1, outcome: 'failed' });
    // JSON (and so pino) would see an Error as {}: its fields are not enumerable.
    expect(JSON.parse(JSON.stringify(failure.error))).to.include({ name: 'Error', message: 'x' }).and.to.have.property('stack').that.is.a('string');
  });
});
