import { expect } from 'chai';
import { RelayClient } from '@relay-ts/client';
import type { RelayServer } from '../../server/src/index.js';
import { Worker } from '../../worker/src/index.js';
import { call, eventually, startRelay, uniqueQueue } from '../helpers/relay.js';

describe('Worker: the token option', () => {
  let server: RelayServer;
  const tokens = { producer: 'w-producer-token', worker: 'w-worker-token' };
  before(async () => {
    server = await startRelay({ authTokens: [{ role: 'producer', token: tokens.producer }, { role: 'worker', token: tokens.worker }] });
  });
  after(() => server?.close());

  it('a worker with a worker token processes and completes a job on a server with tokens', async () => {
    const queue = uniqueQueue('auth');
    await new RelayClient({ baseUrl: server.url, token: tokens.producer }).enqueue({ id: 'a', queue, timeout: 30, payload: { n: 1 } });
    const seen: unknown[] = [];
    const worker = new Worker({ baseUrl: server.url, token: tokens.worker, queue, waitSeconds: 1, logger: {}, process: async (job) => void seen.push(job.payload) });
    await worker.start();
    try {
      await eventually(async () => seen.length === 1);
      // Completed: the job is gone (a heartbeat with the worker token no longer finds it).
      await eventually(async () => (await call('PATCH', '/v1/heartbeat', { baseUrl: server.url, query: { queue, job_id: 'a' }, headers: { authorization: `Bearer ${tokens.worker}` } })).status === 404);
    } finally {
      await worker.stop();
    }
    expect(seen).to.deep.equal([{ n: 1 }]);
  });

  it('token and client together are refused: the token belongs to the client given', () => {
    const client = new RelayClient({ baseUrl: server.url });
    expect(() => new Worker({ client, token: tokens.worker, queue: 'q', process: async () => undefined })).to.throw(TypeError, /token/);
  });
});
