import { expect } from 'chai';
import { call, complete, drain, enqueue, eventually, next, relay, sleep, uniqueQueue } from '../helpers/relay.js';
import { spawnWorker, type WorkerProcess } from '../helpers/worker-process.js';

/** Worker processes: killed with SIGKILL mid-job, and stopped by SIGTERM. */
describe('Worker: in its own process', () => {
  let worker: WorkerProcess | undefined;
  afterEach(async () => {
    await worker?.kill();
    worker = undefined;
  });

  it('killed with SIGKILL mid-job: the job comes back after its lease, with the last checkpoint and a higher attempt', async function () {
    this.timeout(30_000);
    const queue = uniqueQueue('kill');
    await enqueue({ id: 'a', queue, timeout: 1, max_retries: 3 });
    worker = spawnWorker('checkpoint-worker.ts', { RELAY_URL: relay().url, QUEUE: queue });
    const line = await worker.waitFor((m) => 'checkpointed' in m);
    expect(line).to.include({ checkpointed: 3, attempt: 1 });

    // Its heartbeats kept the lease; kill it mid-job.
    await sleep(1200);
    worker.child.kill('SIGKILL');
    const killedAt = Date.now();
    await worker.exited;
    expect((await next(queue)).status, 'still leased right after the kill').to.equal(204);

    const again = await eventually(async () => (await drain(queue))[0], 4000, 50);
    const after = Date.now() - killedAt;
    expect(after).to.be.within(400, 2500); // the rest of the 1 s lease, plus up to a reap interval
    expect(again).to.include({ id: 'a', attempt: 2 });
    expect(again.state).to.deep.equal({ step: 3 });
    expect((await complete(queue, 'a', again.run_id)).status).to.equal(200);
  });

  it('with handleSignals, SIGTERM lets the job in process finish, takes no other, and the process exits by itself', async function () {
    this.timeout(30_000);
    const queue = uniqueQueue('term');
    await enqueue({ id: 'first', queue, timeout: 30 });
    await enqueue({ id: 'second', queue, timeout: 30 });
    worker = spawnWorker('graceful-worker.ts', { RELAY_URL: relay().url, QUEUE: queue, JOB_MS: '800' });
    await worker.waitFor((m) => m.started === 'first');
    worker.child.kill('SIGTERM');
    const exit = await Promise.race([worker.exited, sleep(10_000).then(() => 'still running')]);
    expect(exit, worker.stderr()).to.deep.equal({ code: 0, signal: null });
    expect(worker.messages).to.deep.equal([{ polling: true }, { started: 'first' }, { completed: 'first' }, { stopped: true }]);
    // The second job was never taken.
    const [left] = await drain(queue);
    expect(left).to.include({ id: 'second', attempt: 1 });
    expect((await call('GET', '/v1/failed', { query: { queue } })).body).to.deep.equal([]);
  });
});
