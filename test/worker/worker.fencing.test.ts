import { expect } from 'chai';
import { call, complete, drain, enqueueBatch, eventually, heartbeat, uniqueQueue } from '../helpers/relay.js';
import { Recorder, gate } from '../helpers/worker-kit.js';
import { Worker, LeaseLostError, type ActiveJob } from '../../worker/src/index.js';

const failed = async (queue: string) => (await call('GET', '/v1/failed', { query: { queue } })).body as unknown[];

/**
 * The worker's own lease clock lets go of a job before its lease can end on the server, so a
 * stale call is rare; it still happens when the job is taken from the worker without its
 * lease ending (another consumer fails or reschedules it without a run_id, and takes it
 * again), or when the worker's event loop stalls past the lease. The run_id fence is then
 * what keeps the new holder safe.
 */
describe('Worker: a stale run_id changes nothing', () => {
  it('heartbeat, reschedule, fail, complete and a throw from a worker whose job was taken over leave the new holder alone', async function () {
    this.timeout(15_000);
    const queue = uniqueQueue('fence');
    // What each handler does once its job was taken from it (it stalls first, with no heartbeat due).
    const actions: Record<string, (job: ActiveJob<unknown, { holder: string }>) => Promise<unknown>> = {
      heartbeat: (job) => job.heartbeat({ holder: 'stale' }),
      reschedule: (job) => job.reschedule({ state: { holder: 'stale' }, timeout: 99 }),
      fail: (job) => job.fail(new Error('stale failure'), 0),
      complete: async () => undefined, // process resolves: the runtime completes it
      throw: async () => {
        throw new Error('stale throw'); // process throws: the runtime fails it
      },
    };
    const ids = Object.keys(actions);
    await enqueueBatch(ids.map((id) => ({ id, queue, timeout: 30, max_retries: -1 })));

    const recorder = new Recorder();
    const stalled = gate();
    const outcomes: Record<string, unknown> = {};
    const firstRuns = new Map<string, string>();
    const worker = new Worker<unknown, { holder: string }>({
      logger: {},
      client: recorder.client(),
      queue,
      concurrency: ids.length,
      heartbeatIntervalMs: 60_000,
      process: async (job) => {
        firstRuns.set(job.id, job.run_id);
        await stalled.promise;
        if (job.id === 'throw' || job.id === 'complete') return actions[job.id]!(job) as Promise<void>;
        outcomes[job.id] = await actions[job.id]!(job).then(() => 'resolved', (e: unknown) => e);
      },
    });
    const lost: string[] = [];
    worker.on('leaseLost', (job) => lost.push(job.id));
    let settledByWorker = 0;
    for (const event of ['completed', 'failed', 'rescheduled'] as const) worker.on(event, () => settledByWorker++);
    await worker.start();

    // Another consumer fails every job without naming a delivery (run_id), takes it again at
    // once, and checkpoints its own state. The worker's leases are far from their end.
    await eventually(async () => firstRuns.size === ids.length, 3000);
    for (const id of ids) {
      expect((await call('POST', '/v1/fail', { query: { queue, job_id: id }, json: { retry_in: 0 } })).status, `${id} failed by the other`).to.equal(202);
    }
    const holders = new Map<string, string>();
    await eventually(async () => {
      for (const job of await drain(queue)) holders.set(job.id, job.run_id);
      return holders.size === ids.length;
    }, 5000);
    for (const [id, runId] of holders) expect((await heartbeat(queue, id, { state: { holder: 'current' }, run_id: runId })).status).to.equal(202);

    stalled.open();
    await eventually(async () => lost.length === ids.length, 5000);
    await worker.stop();

    expect(lost.sort()).to.deep.equal([...ids].sort());
    expect(settledByWorker).to.equal(0);
    for (const id of ['heartbeat', 'reschedule', 'fail']) expect(outcomes[id], id).to.be.instanceOf(LeaseLostError);
    // Every call the runtime made for these jobs named the first delivery (a completion on a
    // poll, POST /v1/next, too).
    const settling = recorder.calls.filter((c) => !(c.path === '/v1/next' && c.method === 'GET'));
    const refsOf = (seen: (typeof settling)[number]) => {
      if (seen.path === '/v1/complete/batch' || seen.path === '/v1/next') return JSON.parse(seen.body || '[]');
      return [seen.path === '/reschedule' ? JSON.parse(seen.body) : Object.fromEntries(seen.query)];
    };
    for (const seen of settling) {
      for (const ref of refsOf(seen)) expect(ref.run_id, `${seen.method} ${seen.path}`).to.equal(firstRuns.get(ref.job_id ?? ref.id));
    }
    const completions = settling.filter((c) => c.path === '/v1/complete/batch' || c.path === '/v1/next').flatMap(refsOf);
    expect(completions.map((r: { job_id: string }) => r.job_id)).to.deep.equal(['complete']);
    expect(recorder.seen('/v1/fail')).to.have.length(2);
    expect(recorder.seen('/reschedule')).to.have.length(1);

    // The current holder still holds every job, with its own state, and finishes it normally.
    for (const [id, runId] of holders) {
      expect((await heartbeat(queue, id, { run_id: runId })).status, `${id} still held`).to.equal(202);
      expect((await call('POST', '/v1/fail', { query: { queue, job_id: id, run_id: runId }, json: { retry_in: 0 } })).status).to.equal(202);
    }
    const third = await drain(queue);
    expect(third.map((j) => [j.id, j.attempt, j.state, j.timeout]).sort()).to.deep.equal(ids.map((id) => [id, 3, { holder: 'current' }, 30]).sort());
    for (const job of third) expect((await complete(queue, job.id, job.run_id)).status).to.equal(200);
    expect(await failed(queue)).to.deep.equal([]);
  });
});
