import { expect } from 'chai';
import { JobExistsError, JobNotFoundError, RelayClient, RetryableError, ValidationError } from '@relay-ts/client';
import { nodeTransport } from '../../worker/src/index.js';
import { closedPort } from '../helpers/net.js';
import { relay, uniqueQueue } from '../helpers/relay.js';

describe('nodeTransport (RelayClient over node:http)', () => {
  const client = () => new RelayClient<{ n: number }, { s: string }>({ baseUrl: relay().url, retry: false, ...nodeTransport() });

  it('carries every kind of call: enqueue, next, heartbeat with and without a body, complete', async () => {
    const relayClient = client();
    const queue = uniqueQueue('nt');
    await relayClient.enqueue({ id: 'é/1 ?&', queue, timeout: 30, payload: { n: 1 }, state: { s: 'x' } });
    const [job] = await relayClient.next(queue, { numJobs: 5 });
    expect(job).to.include({ id: 'é/1 ?&', attempt: 1 });
    expect(job!.payload).to.deep.equal({ n: 1 });
    await relayClient.heartbeat(queue, job!.id, { runId: job!.run_id });
    await relayClient.heartbeat(queue, job!.id, { runId: job!.run_id, state: { s: 'y' } });
    await relayClient.complete(queue, job!.id, { runId: job!.run_id });
    expect(await relayClient.next(queue)).to.deep.equal([]);
  });

  it('raises the same error classes as fetch does', async () => {
    const relayClient = client();
    const queue = uniqueQueue('nt');
    await relayClient.enqueue({ id: 'a', queue, timeout: 30 });
    const exists = await relayClient.enqueue({ id: 'a', queue, timeout: 30 }).catch((e: unknown) => e);
    expect(exists).to.be.instanceOf(JobExistsError);
    const missing = await relayClient.complete(queue, 'nope').catch((e: unknown) => e);
    expect(missing).to.be.instanceOf(JobNotFoundError);
    const invalid = await relayClient.enqueue({ id: '', queue, timeout: 30 }).catch((e: unknown) => e);
    expect(invalid).to.be.instanceOf(ValidationError);
  });

  it('reports a refused connection as retryable, and honours an abort', async () => {
    const port = await closedPort();
    const down = new RelayClient({ baseUrl: `http://127.0.0.1:${port}`, retry: false, ...nodeTransport() });
    expect(await down.health().catch((e: unknown) => e)).to.be.instanceOf(RetryableError);

    const controller = new AbortController();
    const waiting = client().next(uniqueQueue('nt'), { wait: 30, signal: controller.signal }).catch((e: unknown) => e);
    setTimeout(() => controller.abort(), 100);
    const aborted = await waiting;
    expect(aborted).to.be.instanceOf(Error);
    expect((aborted as Error).name).to.equal('AbortError');
  });
});
