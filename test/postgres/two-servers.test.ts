import { expect } from 'chai';
import { readdirSync } from 'node:fs';
import { consume, enqueueJobs, notExactlyOnce } from '../helpers/consumers.js';
import { databaseUrl, freshDatabase, sql, type FreshDatabase } from '../helpers/postgres.js';
import { killAll, spawnRelay, type RelayProcess } from '../helpers/process.js';
import { call, uniqueQueue } from '../helpers/relay.js';

/*
 * Two relay-server processes on one PostgreSQL: exactly-once delivery across both, their
 * two reapers never counting one expiry twice, and both migrating a fresh database at once.
 */

const REAP_INTERVAL = '0.05';

describe('two server processes on one PostgreSQL', function () {
  this.timeout(30_000);
  after(killAll);

  describe('sharing the suite database', () => {
    let a: RelayProcess;
    let b: RelayProcess;

    before(async () => {
      const env = { DATABASE_URL: databaseUrl(), REAP_INTERVAL, LOG_LEVEL: 'info' };
      [a, b] = await Promise.all([spawnRelay({ env }), spawnRelay({ env })]);
    });
    after(async () => {
      const exits = await Promise.all([a?.stop('SIGTERM'), b?.stop('SIGTERM')]);
      expect(exits).to.deep.equal([
        { code: 0, signal: null },
        { code: 0, signal: null },
      ]);
    });

    it('start on PostgreSQL and say so in their start-up line', () => {
      for (const relay of [a, b]) {
        expect(relay.started).to.include({ database: 'postgres', reapInterval: Number(REAP_INTERVAL) });
        expect(relay.url).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
      }
      expect(a.url).not.to.equal(b.url);
    });

    it('16 consumers split across both servers receive each of 500 jobs exactly once', async () => {
      const queue = uniqueQueue('two');
      const ids = await enqueueJobs(queue, 500, {}, a.url);
      const tally = await consume(queue, { consumers: 16, baseUrls: [a.url, b.url], numJobs: (i, round) => ((i * 3 + round) % 5) + 1 });
      expect(tally.unexpected).to.deep.equal([]);
      expect(tally.overLimit).to.deep.equal([]);
      expect(notExactlyOnce(ids, tally)).to.deep.equal([]);
      for (const relay of [a, b]) {
        expect((await call('GET', '/v1/next', { baseUrl: relay.url, query: { queue } })).status).to.equal(204);
      }
    });

    it('both reapers running count each lease expiry once: max_retries 3 means exactly 4 deliveries, then failed', async () => {
      const queue = uniqueQueue('reap');
      const maxRetries = 3;
      // timeout 0: every lease ends the moment it is given, so both reapers race for every job.
      const ids = await enqueueJobs(queue, 40, { timeout: 0, max_retries: maxRetries, payload: 'p' }, b.url);
      const failedCount = async () => {
        const res = await call('GET', '/v1/failed', { baseUrl: a.url, query: { queue, limit: 1000 } });
        expect(res.status, res.text).to.equal(200);
        return (res.body as unknown[]).length;
      };
      // Consumers on both servers take every job whenever it is back, and never complete it.
      const tally = await consume(queue, {
        consumers: 4,
        baseUrls: [a.url, b.url],
        numJobs: () => 10,
        keepGoing: async () => (await failedCount()) < ids.length,
        emptyDelayMs: 20,
        deadlineMs: 25_000,
        skipComplete: true,
      });
      expect(tally.unexpected).to.deep.equal([]);
      // A retry counted twice would end the job after fewer deliveries; one not counted, more.
      const expected = Array.from({ length: maxRetries + 1 }, (_, i) => i + 1);
      const attempts = (id: string) => [...(tally.deliveries.get(id) ?? [])].sort((x, y) => x - y);
      const wrong = ids.filter((id) => JSON.stringify(attempts(id)) !== JSON.stringify(expected));
      expect(wrong.map((id) => `${id}: ${JSON.stringify(attempts(id))}`)).to.deep.equal([]);

      const failed = await call('GET', '/v1/failed', { baseUrl: b.url, query: { queue, limit: 1000 } });
      expect((failed.body as Array<{ id: string }>).map((j) => j.id).sort()).to.deep.equal([...ids].sort());
      for (const job of failed.body) {
        expect(job).to.include({ queue, reason: 'lease expired', attempts: maxRetries + 1, max_retries: maxRetries, payload: 'p' });
      }
      // Failed means never handed out again, by either server.
      for (const relay of [a, b]) {
        expect((await call('GET', '/v1/next', { baseUrl: relay.url, query: { queue, num_jobs: 100 } })).status).to.equal(204);
      }
    });

    it('max_retries 1: delivered exactly twice, attempt 1 then 2, then listed as failed with reason "lease expired"', async () => {
      const queue = uniqueQueue('reap1');
      const enq = await call('POST', '/enqueue', { baseUrl: a.url, json: { id: 'only', queue, timeout: 0, max_retries: 1, state: { s: 1 } } });
      expect(enq.status, enq.text).to.equal(202);
      const attempts: number[] = [];
      const began = Date.now();
      // Ask both servers in turn until the job has failed.
      for (let i = 0; Date.now() - began < 10_000; i++) {
        const relay = i % 2 ? b : a;
        const res = await call('GET', '/v1/next', { baseUrl: relay.url, query: { queue } });
        if (res.status === 200) {
          attempts.push(...(res.body as Array<{ attempt: number }>).map((j) => j.attempt));
          expect(res.body[0].state).to.deep.equal({ s: 1 });
        }
        const failed = await call('GET', '/v1/failed', { baseUrl: relay.url, query: { queue } });
        if (failed.body.length) break;
      }
      expect(attempts).to.deep.equal([1, 2]);
      const failed = await call('GET', '/v1/failed', { baseUrl: b.url, query: { queue, job_id: 'only' } });
      expect(failed.body).to.have.length(1);
      expect(failed.body[0]).to.include({ id: 'only', reason: 'lease expired', attempts: 2 });
      expect(failed.body[0].state).to.deep.equal({ s: 1 });
      for (const relay of [a, b]) {
        expect((await call('GET', '/v1/next', { baseUrl: relay.url, query: { queue } })).status).to.equal(204);
      }
    });
  });

  describe('starting together on a fresh database', () => {
    const created: FreshDatabase[] = [];
    after(async () => {
      for (const db of created) await db.drop();
    });

    it('both migrate it safely (one applies each migration once), come up healthy and work', async () => {
      const db = await freshDatabase('relay_migrate');
      created.push(db);
      const env = { DATABASE_URL: db.url, REAP_INTERVAL };
      // Three at once, to give the race every chance.
      const relays = await Promise.all([spawnRelay({ env }), spawnRelay({ env }), spawnRelay({ env })]);
      try {
        for (const relay of relays) {
          const health = await call('GET', '/health', { baseUrl: relay.url });
          expect(health.status, health.text).to.equal(200);
        }
        const files = readdirSync(new URL('../../server/migrations/', import.meta.url)).filter((f) => /^\d+_.+\.sql$/.test(f));
        const applied = await sql<{ version: number }>(db.url, 'SELECT version FROM relay_schema_migrations ORDER BY version');
        expect(applied.map((r) => r.version)).to.deep.equal(files.map((f) => Number.parseInt(f, 10)).sort((x, y) => x - y));
        // One schema, shared: a job enqueued on one is delivered by another.
        const queue = uniqueQueue('fresh');
        expect((await call('POST', '/enqueue', { baseUrl: relays[0]!.url, json: { id: 'x', queue, timeout: 5 } })).status).to.equal(202);
        const res = await call('GET', '/v1/next', { baseUrl: relays[2]!.url, query: { queue } });
        expect(res.status, res.text).to.equal(200);
        expect(res.body[0].id).to.equal('x');
      } finally {
        const exits = await Promise.all(relays.map((r) => r.stop('SIGTERM')));
        for (const relay of relays) expect(relay.stderr()).to.equal('');
        expect(exits.every((e) => e.code === 0)).to.equal(true);
      }
    });
  });
});
