import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import type { RelayServer } from '../../server/src/index.js';
import { databaseUrl, sql } from '../helpers/postgres.js';
import { call, eventually, startRelay, uniqueQueue } from '../helpers/relay.js';

describe('Idempotency-Key across servers on one PostgreSQL', function () {
  this.timeout(60_000);
  let a: RelayServer;
  let b: RelayServer;
  before(async () => {
    [a, b] = await Promise.all([startRelay(), startRelay({ idempotencyWindowSeconds: 1, reapInterval: 0.2 })]);
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  it('the same key sent to two servers at once has one effect; each answer is 202, fresh or replayed, or 409', async () => {
    for (let round = 0; round < 20; round++) {
      const queue = uniqueQueue();
      const key = randomUUID();
      const send = (server: RelayServer) =>
        call('POST', '/enqueue', { baseUrl: server.url, json: { id: 'x', queue, timeout: 30 }, headers: { 'idempotency-key': key } });
      const results = await Promise.all([send(a), send(b), send(a), send(b)]);
      for (const r of results) expect([202, 409], r.text).to.include(r.status);
      expect(results.filter((r) => r.status === 202 && r.headers.get('idempotent-replayed') === null), `round ${round}`).to.have.length(1);
      const jobs = await call('GET', '/v1/next', { baseUrl: a.url, query: { queue, num_jobs: 10 } });
      expect(jobs.body, `round ${round}`).to.have.length(1);
    }
  });

  it('the reaper purges keys older than the window', async () => {
    const queue = uniqueQueue();
    const keys = Array.from({ length: 50 }, () => `purge-${randomUUID()}`);
    await Promise.all(keys.map((key, i) => call('POST', '/enqueue', { baseUrl: b.url, json: { id: String(i), queue, timeout: 30 }, headers: { 'idempotency-key': key } })));
    const count = async () => Number((await sql(databaseUrl(), 'SELECT count(*)::int AS n FROM relay_idempotency_keys WHERE key = ANY($1)', [keys]))[0].n);
    expect(await count()).to.equal(50);
    await eventually(async () => (await count()) === 0, 10_000, 200);
  });
});
