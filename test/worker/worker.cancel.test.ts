import { expect } from 'chai';
import { RelayClient } from '../../client/src/index.js';
import { Worker, LeaseLostError } from '../../worker/src/index.js';
import { gate } from '../helpers/worker-kit.js';
import { eventually, relay, uniqueQueue } from '../helpers/relay.js';

describe('Worker: a job cancelled by an operator', () => {
  it('aborts the handler at the next heartbeat, with a LeaseLostError, and completes nothing', async () => {
    const queue = uniqueQueue('cancel');
    const client = new RelayClient({ baseUrl: relay().url });
    await client.enqueue({ id: 'long', queue, timeout: 3 });
    const started = gate();
    let reason: unknown;
    let completed = 0;
    const worker = new Worker({
      logger: {},
      baseUrl: relay().url,
      queue,
      process: async (job) => {
        started.open();
        await new Promise<void>((resolve) => job.signal.addEventListener('abort', () => resolve(), { once: true }));
        reason = job.signal.reason;
      },
    });
    worker.on('completed', () => completed++);
    await worker.start();
    await started.promise;
    await client.cancelJob(queue, 'long');
    // Heartbeats go every third of the 3 s lease.
    await eventually(async () => reason !== undefined, 5_000);
    await worker.stop();
    expect(reason).to.be.instanceOf(LeaseLostError);
    expect(completed).to.equal(0);
    expect(await client.getJob(queue, 'long')).to.equal(undefined);
  });
});
