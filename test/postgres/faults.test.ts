import { expect } from 'chai';
import { consume, enqueueJobs } from '../helpers/consumers.js';
import { databaseUrl, freshDatabase, sql, terminateRelayConnections, type FreshDatabase } from '../helpers/postgres.js';
import { expectInternalErrorsWithoutLeak, expectNoLeak, expectRetryable } from '../helpers/problems.js';
import { call, eventually, startRelay, uniqueQueue, type ApiResponse } from '../helpers/relay.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import type { RelayServer } from '../../server/src/index.js';

/*
 * "A fault loses no job", on PostgreSQL: the database goes away under a running server
 * (through a TCP proxy that resets and refuses connections, or silently drops everything),
 * its connections are terminated, or its schema breaks.
 */

const CONNECTION_TIMEOUT_MS = 1000;
const STATEMENT_TIMEOUT_MS = 1000;

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const began = Date.now();
  const value = await fn();
  return { value, ms: Date.now() - began };
}

async function leaseAll(url: string, queue: string): Promise<Array<{ id: string; run_id: string; attempt: number }>> {
  const res = await call('GET', '/v1/next', { baseUrl: url, query: { queue, num_jobs: 1000 } });
  expect(res.status, res.text).to.be.oneOf([200, 204]);
  return res.status === 200 ? res.body : [];
}

describe('PostgreSQL faults', function () {
  this.timeout(30_000);

  describe('the database going away behind a TCP proxy', () => {
    let proxy: TcpProxy;
    let server: RelayServer;

    beforeEach(async () => {
      const target = new URL(databaseUrl());
      proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
      server = await startRelay({
        databaseUrl: proxy.proxiedUrl(databaseUrl()),
        connectionTimeoutMs: CONNECTION_TIMEOUT_MS,
        statementTimeoutMs: STATEMENT_TIMEOUT_MS,
      });
    });
    afterEach(async () => {
      await proxy.restore();
      await server.close();
      await proxy.close();
    });

    /** Every request a client can make while the database is away, on queue `other`. */
    function requestsDuringOutage(queue: string, leased: Array<{ id: string }>, other: string) {
      return [
        () => call('POST', '/enqueue', { baseUrl: server.url, json: { id: 'x', queue: other, timeout: 5 } }),
        () => call('POST', '/enqueue/batch', { baseUrl: server.url, json: [{ id: 'y', queue: other, timeout: 5 }] }),
        () => call('GET', '/v1/next', { baseUrl: server.url, query: { queue } }),
        () => call('PATCH', '/v1/heartbeat', { baseUrl: server.url, query: { queue, job_id: leased[0]!.id }, json: { s: 1 } }),
        () => call('POST', '/reschedule', { baseUrl: server.url, json: { id: leased[1]!.id, queue, timeout: 60 } }),
        () => call('DELETE', '/v1/complete', { baseUrl: server.url, query: { queue, job_id: leased[2]!.id } }),
        () => call('GET', '/v1/failed', { baseUrl: server.url, query: { queue } }),
      ];
    }

    async function expectRecoveryWithoutLoss(queue: string, ids: string[], leased: Array<{ id: string; run_id: string }>, other: string) {
      // Back: /health turns 200 and requests succeed again.
      await eventually(async () => (await call('GET', '/health', { baseUrl: server.url })).status === 200, 10_000, 100);
      // The jobs leased before the cut are still in flight and can be completed...
      for (const job of leased) {
        const res = await call('DELETE', '/v1/complete', { baseUrl: server.url, query: { queue, job_id: job.id, run_id: job.run_id } });
        expect(res.status, `${job.id}: ${res.text}`).to.equal(200);
      }
      // ...and every other job enqueued before the cut is delivered exactly once.
      const rest = await leaseAll(server.url, queue);
      expect(rest.map((j) => j.id)).to.deep.equal(ids.slice(leased.length));
      expect(rest.every((j) => j.attempt === 1)).to.equal(true);
      expect(await leaseAll(server.url, queue)).to.deep.equal([]);
      // Nothing sent during the outage was stored behind the client's back.
      expect(await leaseAll(server.url, other)).to.deep.equal([]);
    }

    it('connections reset and refused: 429 with Retry-After at once, /health 503, no job lost', async () => {
      const [queue, other] = [uniqueQueue('cut'), uniqueQueue('cut-other')];
      const ids = await enqueueJobs(queue, 50, {}, server.url);
      const leased = (await call('GET', '/v1/next', { baseUrl: server.url, query: { queue, num_jobs: 10 } })).body as Array<{ id: string; run_id: string }>;
      expect(leased.map((j) => j.id)).to.deep.equal(ids.slice(0, 10));

      await proxy.cut('refuse');
      for (const request of requestsDuringOutage(queue, leased, other)) {
        const { value: res, ms } = await timed(request);
        expectRetryable(res, `during the outage (${ms} ms)`);
        expect(ms, res.text).to.be.below(CONNECTION_TIMEOUT_MS + 2000);
      }
      const { value: health, ms } = await timed(() => call('GET', '/health', { baseUrl: server.url }));
      expect(health.status, health.text).to.equal(503);
      expectNoLeak(health, 'GET /health during the outage');
      expect(ms).to.be.below(CONNECTION_TIMEOUT_MS + 2000);

      await proxy.restore();
      await expectRecoveryWithoutLoss(queue, ids, leased, other);
    });

    it('connections reset under keyed writes, transactions open: every answer a 202 or a 429, and the server carries on', async () => {
      const queue = uniqueQueue('tx-cut');
      // A keyed batch is a transaction (the jobs and the remembered answer): a connection reset
      // between its statements reaches the client with no query to take it. A keyed single
      // enqueue is one statement with its key; half the requests are each.
      const enqueue = (i: number) => {
        const headers = { 'idempotency-key': `${queue}-${i}` };
        const job = { id: `j${i}`, queue, timeout: 30 };
        return i % 2 === 0
          ? call('POST', '/enqueue', { baseUrl: server.url, headers, json: job })
          : call('POST', '/enqueue/batch', { baseUrl: server.url, headers, json: [job] });
      };
      const refused: number[] = [];
      let sent = 0;
      for (let round = 0; round < 3; round++) {
        let answered = 0;
        const burst = Array.from({ length: 150 }, (_, i) =>
          enqueue(round * 1000 + i).then((res) => {
            answered++;
            if (res.status !== 202) {
              expectRetryable(res, `enqueue ${i} of round ${round}`);
              refused.push(round * 1000 + i);
            }
          }),
        );
        sent += burst.length;
        // Cut while the burst is being written, transactions open on the pooled connections.
        await eventually(async () => answered >= 20, 10_000, 5);
        await proxy.cut('refuse');
        await Promise.all(burst);
        await proxy.restore();
        await eventually(async () => (await call('GET', '/health', { baseUrl: server.url })).status === 200, 10_000, 100);
      }
      expect(refused.length, 'some writes met the cut').to.be.greaterThan(0);
      // A 429 whose COMMIT had reached the database before the connection went may have stored
      // its job: its retry with the same key gets the first answer again; any other stores it now.
      for (const i of refused) expect((await enqueue(i)).status, `enqueue ${i} again`).to.equal(202);
      const stored = await leaseAll(server.url, queue);
      expect(stored.length, 'every job stored once').to.equal(sent);
    });

    it('everything silently dropped (a partition): 429 within the timeouts, not a hung request; no job lost', async () => {
      const [queue, other] = [uniqueQueue('hole'), uniqueQueue('hole-other')];
      const ids = await enqueueJobs(queue, 50, {}, server.url);
      const leased = (await call('GET', '/v1/next', { baseUrl: server.url, query: { queue, num_jobs: 10 } })).body as Array<{ id: string; run_id: string }>;
      expect(leased.map((j) => j.id)).to.deep.equal(ids.slice(0, 10));

      await proxy.cut('blackhole');
      // All at once: some get a pooled connection whose packets now vanish, others wait for
      // a new one that never completes its handshake. Each must end in a 429, not hang.
      const requests = [...requestsDuringOutage(queue, leased, other), () => call('GET', '/health', { baseUrl: server.url })];
      const results = await Promise.all(requests.map((r) => timed(r)));
      const health = results.pop()!;
      for (const { value: res, ms } of results) {
        expectRetryable(res, `during the partition (${ms} ms)`);
        expect(ms, res.text).to.be.below(STATEMENT_TIMEOUT_MS + 8000);
      }
      expect(health.value.status, health.value.text).to.equal(503);
      expect(health.ms).to.be.below(STATEMENT_TIMEOUT_MS + 8000);

      await proxy.restore();
      await expectRecoveryWithoutLoss(queue, ids, leased, other);
    });
  });

  describe('the relay connections terminated mid-run', () => {
    let db: FreshDatabase;
    let server: RelayServer;

    before(async () => {
      db = await freshDatabase('relay_terminate');
      server = await startRelay({ databaseUrl: db.url, connectionTimeoutMs: CONNECTION_TIMEOUT_MS, statementTimeoutMs: STATEMENT_TIMEOUT_MS });
    });
    after(async () => {
      await server?.close();
      await db?.drop();
    });

    it('pg_terminate_backend: requests recover after at most a 429 or two, and no job is lost', async () => {
      const queue = uniqueQueue('term');
      // A short lease and unlimited retries: a lease whose response was lost to the fault comes
      // back soon, and is then delivered again (at least once), never dropped.
      const ids = await enqueueJobs(queue, 300, { timeout: 2, max_retries: -1 }, server.url);
      const terminations: Promise<number>[] = [];
      const tally = await consume(queue, {
        consumers: 8,
        baseUrls: [server.url],
        numJobs: (i) => (i % 4) + 1,
        retry429: true,
        retryDelayMs: 50,
        deadlineMs: 25_000,
        onBatch: (total) => {
          // Twice mid-run, while the consumers are busy.
          if (terminations.length === 0 && total >= 80) terminations.push(terminateRelayConnections(databaseUrl(), db.name));
          if (terminations.length === 1 && total >= 180) terminations.push(terminateRelayConnections(databaseUrl(), db.name));
        },
        // Until every job is completed: a lost lease comes back after its 2 s timeout.
        keepGoing: (t) => t.completed.size < ids.length,
        emptyDelayMs: 100,
      });
      const terminated = await Promise.all(terminations);
      expect(terminated.length).to.equal(2);
      expect(terminated.every((n) => n > 0), `connections terminated: ${terminated}`).to.equal(true);
      expect(tally.unexpected).to.deep.equal([]);
      expect(tally.overLimit).to.deep.equal([]);
      expect(tally.maxConsecutive429, 'most 429s in a row for one request').to.be.at.most(2);
      // No job lost: every one delivered and completed.
      expect(ids.filter((id) => !tally.completed.has(id))).to.deep.equal([]);
      // A job delivered twice is one whose `next` response was a 429 after the claim was made.
      const duplicates = [...tally.deliveries.values()].filter((a) => a.length > 1).length;
      expect(duplicates).to.be.at.most(tally.retried.next);
      expect(await leaseAll(server.url, queue)).to.deep.equal([]);
      const failed = await call('GET', '/v1/failed', { baseUrl: server.url, query: { queue } });
      expect(failed.body).to.deep.equal([]);
    });

    it('/health and every endpoint answer again after all connections were terminated while idle', async () => {
      const queue = uniqueQueue('idle');
      expect((await call('POST', '/enqueue', { baseUrl: server.url, json: { id: 'a', queue, timeout: 30 } })).status).to.equal(202);
      expect(await terminateRelayConnections(databaseUrl(), db.name)).to.be.greaterThan(0);
      const responses: ApiResponse[] = [];
      const retry = async (fn: () => Promise<ApiResponse>) => {
        for (let i = 0; i < 3; i++) {
          const res = await fn();
          responses.push(res);
          if (res.status !== 429 && res.status !== 503) return res;
        }
        throw new Error(`still failing after 3 tries: ${responses.map((r) => `${r.status} ${r.text}`).join('; ')}`);
      };
      expect((await retry(() => call('GET', '/health', { baseUrl: server.url }))).status).to.equal(200);
      const [job] = (await retry(() => call('GET', '/v1/next', { baseUrl: server.url, query: { queue } }))).body;
      expect(job.id).to.equal('a');
      expect((await retry(() => call('DELETE', '/v1/complete', { baseUrl: server.url, query: { queue, job_id: 'a' } }))).status).to.equal(200);
      for (const res of responses.filter((r) => r.status === 429)) expectRetryable(res, 'after termination');
    });
  });

  describe('a 500', () => {
    let db: FreshDatabase;
    let server: RelayServer;

    before(async () => {
      db = await freshDatabase('relay_broken');
      server = await startRelay({ databaseUrl: db.url });
    });
    after(async () => {
      await server?.close();
      await db?.drop();
    });

    it('(the schema changed behind the server) carries neither SQL nor a stack trace, and the server recovers', async () => {
      const queue = uniqueQueue('broken');
      expect((await call('POST', '/enqueue', { baseUrl: server.url, json: { id: 'a', queue, timeout: 5 } })).status).to.equal(202);
      await sql(db.url, 'ALTER TABLE relay_jobs RENAME TO relay_jobs_moved_away');
      const requests: Array<[string, string, Parameters<typeof call>[2]]> = [
        ['POST', '/enqueue', { json: { id: 'b', queue, timeout: 5 } }],
        ['POST', '/enqueue/batch', { json: [{ id: 'c', queue, timeout: 5 }] }],
        ['GET', '/v1/next', { query: { queue } }],
        ['PATCH', '/v1/heartbeat', { query: { queue, job_id: 'a' } }],
        ['POST', '/reschedule', { json: { id: 'a', queue, timeout: 5 } }],
        ['DELETE', '/v1/complete', { query: { queue, job_id: 'a' } }],
      ];
      try {
        await expectInternalErrorsWithoutLeak(server.url, requests);
      } finally {
        await sql(db.url, 'ALTER TABLE relay_jobs_moved_away RENAME TO relay_jobs');
      }
      const [job] = (await call('GET', '/v1/next', { baseUrl: server.url, query: { queue } })).body;
      expect(job.id).to.equal('a');
    });
  });
});
