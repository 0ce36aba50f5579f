import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { expect } from 'chai';
import type { RelayServer } from '../../server/src/index.js';
import { sql } from '../helpers/postgres.js';
import { backend, call, enqueue, enqueueBatch, eventually, next, relay, startRelay, uniqueQueue, type ApiResponse } from '../helpers/relay.js';

/*
 * run_at over real HTTP, on the suite's database (PGlite or DATABASE_URL): stored and returned
 * to the microsecond for every year 0001-9999, any RFC 3339 offset converted to UTC, and a UTC
 * value outside that range refused before it reaches the database.
 */

// Past instants (next hands them out at once) in the years the embedded database's Date
// parser moved, at the edges of its two-digit-year window, and before the epoch, each to the
// microsecond and written as the server writes it.
const PAST = [
  '0001-01-01T00:00:00.000001Z',
  '0050-06-01T12:00:00.123456Z',
  '0099-12-31T23:59:59.999999Z',
  '0100-02-28T08:30:00.654321Z',
  '1969-12-31T23:59:59.99999Z',
];
const YEAR_9999 = '9999-12-31T23:59:59.999999Z';
const RANGE = /0001-01-01T00:00:00Z.*9999-12-31T23:59:59\.999999Z/;
// RFC 3339 in UTC as the server writes it: Z, and a fraction of three to six digits.
const UTC_RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3,6}Z$/;

async function failJob(queue: string, job: { id: string; run_id: string }, body: { error?: string; retry_in?: number } = {}) {
  return call('POST', '/v1/fail', { query: { queue, job_id: job.id, run_id: job.run_id }, json: body });
}

async function failedJobs(queue: string, baseUrl?: string): Promise<any[]> {
  const res = await call('GET', '/v1/failed', { query: { queue }, baseUrl });
  expect(res.status, res.text).to.equal(200);
  return res.body;
}

function expectRangeProblem(res: ApiResponse, path: string) {
  expect(res.status, res.text).to.equal(400);
  expect(res.headers.get('content-type')).to.match(/^application\/problem\+json/);
  expect(res.body.detail).to.match(RANGE);
  const error = res.body.errors.find((e: { path: string }) => e.path === path);
  expect(error, `an error on ${path}: ${res.text}`).to.exist;
  expect(error.message).to.match(RANGE);
}

describe('run_at', () => {
  describe('round trip to the microsecond, years 0001 to 9999', () => {
    for (const runAt of PAST) {
      it(`${runAt}: enqueue, then next returns it exactly`, async () => {
        const queue = uniqueQueue();
        expect((await enqueue({ id: 'a', queue, timeout: 30, run_at: runAt })).status).to.equal(202);
        const res = await next(queue);
        expect(res.status, res.text).to.equal(200);
        expect(res.body[0].run_at).to.equal(runAt);
      });
    }

    it('every year through enqueue/batch, handed out oldest first', async () => {
      const queue = uniqueQueue();
      const jobs = [...PAST].reverse().map((run_at, i) => ({ id: String(i), queue, timeout: 30, run_at }));
      expect((await enqueueBatch(jobs)).status).to.equal(202);
      const res = await next(queue, 10);
      expect(res.status, res.text).to.equal(200);
      expect(res.body.map((j: { run_at: string }) => j.run_at)).to.deep.equal(PAST);
    });

    it('every year through reschedule', async () => {
      const queue = uniqueQueue();
      for (const runAt of PAST) {
        await enqueue({ id: 'r', queue, timeout: 30 });
        const [job] = (await next(queue)).body;
        const res = await call('POST', '/reschedule', { json: { id: 'r', queue, timeout: 30, run_at: runAt, run_id: job.run_id } });
        expect(res.status, res.text).to.equal(202);
        const again = await next(queue);
        expect(again.status, again.text).to.equal(200);
        expect(again.body[0].run_at).to.equal(runAt);
        expect((await call('DELETE', '/v1/complete', { query: { queue, job_id: 'r' } })).status).to.equal(200);
      }
    });

    it('every year through the failed jobs, whose failed_at keeps its microseconds too', async () => {
      const queue = uniqueQueue();
      await enqueueBatch(PAST.map((run_at, i) => ({ id: String(i), queue, timeout: 30, run_at })));
      for (const job of (await next(queue, 10)).body) expect((await failJob(queue, job, { error: 'boom' })).status).to.equal(202);
      const failed = await failedJobs(queue);
      expect(failed.map((j) => j.run_at).sort()).to.deep.equal(PAST);
      for (const { failed_at } of failed) expect(failed_at).to.match(UTC_RFC3339);
      // PostgreSQL's now() has microseconds (PGlite's clock ticks in milliseconds): cut to
      // milliseconds, none of five would show more than three digits.
      if (backend === 'postgres') {
        const times = failed.map((j) => j.failed_at);
        expect(times.some((t) => /\.\d{4,6}Z$/.test(t)), times.join(' ')).to.equal(true);
      }
    });

    it('the run_at fail answers for a retry is the one next then hands out, to the microsecond', async () => {
      const queue = uniqueQueue();
      await enqueueBatch(Array.from({ length: 5 }, (_, i) => ({ id: String(i), queue, timeout: 30, max_retries: 1 })));
      const answered = new Map<string, string>();
      for (const job of (await next(queue, 10)).body) {
        const res = await failJob(queue, job, { retry_in: 0 });
        expect(res.body).to.include({ outcome: 'retrying' });
        expect(res.body.run_at).to.match(UTC_RFC3339);
        answered.set(job.id, res.body.run_at);
      }
      const again = await eventually(async () => {
        const res = await next(queue, 10);
        return res.status === 200 ? res.body : undefined;
      });
      for (const job of again) expect(job.run_at).to.equal(answered.get(job.id));
      if (backend === 'postgres') {
        const times = [...answered.values()];
        expect(times.some((t) => /\.\d{4,6}Z$/.test(t)), times.join(' ')).to.equal(true);
      }
    });

    it(`${YEAR_9999}: stored as sent, and listed so once its lease expires`, async function () {
      this.timeout(60_000);
      const queue = uniqueQueue();
      await withOwnServer(async (server) => {
        expect((await enqueue({ id: 'far', queue, timeout: 30, run_at: YEAR_9999 }, server.url())).status).to.equal(202);
        expect((await next(queue, 1, server.url())).status).to.equal(204);
        // Nobody can wait for year 9999: lease the job behind the server's back, with a lease
        // already over, and let the reaper move it (max_retries 0) to the failed jobs as stored.
        await server.sql(
          `UPDATE relay_jobs SET run_id = nextval('relay_run_seq'), attempt = 1, lease_expires_at = now() - interval '1 second'
           WHERE queue = $1`,
          [queue],
        );
        const [failed] = await eventually(async () => {
          const rows = await failedJobs(queue, server.url());
          return rows.length > 0 ? rows : undefined;
        });
        expect(failed).to.include({ id: 'far', reason: 'lease expired', run_at: YEAR_9999 });
      });
    });
  });

  describe('any RFC 3339 date-time, converted to UTC', () => {
    /** Enqueues each sent value (one job each, single enqueues) and returns what next hands out for it. */
    async function roundTrip(sent: string[]): Promise<string[]> {
      const queue = uniqueQueue();
      for (const [i, run_at] of sent.entries()) {
        const res = await enqueue({ id: String(i), queue, timeout: 30, run_at });
        expect(res.status, `${run_at}: ${res.text}`).to.equal(202);
      }
      const res = await next(queue, sent.length);
      expect(res.body).to.have.length(sent.length);
      const byId = new Map<string, string>(res.body.map((j: { id: string; run_at: string }) => [j.id, j.run_at]));
      return sent.map((_, i) => byId.get(String(i))!);
    }

    it('accepts every offset up to ±23:59, and lowercase t and z, converting to UTC', async () => {
      const cases: Array<[string, string]> = [
        ['2001-01-01T00:00:00+20:00', '2000-12-31T04:00:00.000Z'],
        ['2000-12-31T04:00:00-23:59', '2001-01-01T03:59:00.000Z'],
        ['2001-01-01T00:00:00+23:59', '2000-12-31T00:01:00.000Z'],
        ['2001-01-01T05:30:00.25+05:30', '2001-01-01T00:00:00.250Z'],
        ['2000-02-29T23:00:00.1234-01:00', '2000-03-01T00:00:00.1234Z'],
        ['2001-03-01t00:00:00.5z', '2001-03-01T00:00:00.500Z'],
      ];
      expect(await roundTrip(cases.map(([sent]) => sent))).to.deep.equal(cases.map(([, stored]) => stored));
    });

    it('drops the digits past the microsecond (the Go client sends nanoseconds), not rounding', async () => {
      const sent = ['2020-01-01T00:00:00.123456789Z', '2020-01-01T00:00:00.9999999Z', '2020-01-01T00:00:00.000001000+00:00'];
      expect(await roundTrip(sent)).to.deep.equal(['2020-01-01T00:00:00.123456Z', '2020-01-01T00:00:00.999999Z', '2020-01-01T00:00:00.000001Z']);
    });

    it('returns what Date.toISOString() sent exactly, as before, and microseconds alongside', async () => {
      const queue = uniqueQueue();
      const sent = ['2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.120Z', '2026-01-01T00:00:00.123Z', '2026-01-01T00:00:00.123400Z'];
      expect((await enqueueBatch(sent.map((run_at, i) => ({ id: String(i), queue, timeout: 30, run_at })))).status).to.equal(202);
      const res = await next(queue, 10);
      expect(res.body.map((j: { run_at: string }) => j.run_at)).to.deep.equal([...sent.slice(0, 3), '2026-01-01T00:00:00.1234Z']);
    });

    it('refuses a value that passes the format check but is no date (400 on its path)', async () => {
      const queue = uniqueQueue();
      for (const runAt of ['2023-02-29T00:00:00Z', '2001-01-01T24:00:00Z', '2001-01-01T00:00:00+24:00', '2001-01-01T00:00:00+0100', '2001-13-01T00:00:00Z']) {
        const res = await enqueue({ id: 'a', queue, timeout: 30, run_at: runAt });
        expect(res.status, `${runAt}: ${res.text}`).to.equal(400);
        expect(res.body.errors.map((e: { path: string }) => e.path), runAt).to.include('/body/run_at');
      }
      expect((await next(queue)).status).to.equal(204);
    });
  });

  describe('a UTC value outside 0001-9999 is a 400 that names the range and stores nothing', () => {
    const outside = ['0001-01-01T00:00:00+01:00', '9999-12-31T23:59:59-23:59', '0000-06-01T00:00:00Z', '0000-12-31T23:59:59.999999Z'];

    for (const runAt of outside) {
      it(`${runAt} through enqueue`, async () => {
        const queue = uniqueQueue();
        expectRangeProblem(await enqueue({ id: 'a', queue, timeout: 30, run_at: runAt }), '/body/run_at');
        // Nothing stored: the id is free, and the queue keeps answering.
        expect((await next(queue)).status).to.equal(204);
        expect((await enqueue({ id: 'a', queue, timeout: 30 })).status).to.equal(202);
        expect((await next(queue)).status).to.equal(200);
      });
    }

    it('through enqueue/batch: names the element, stores none of the batch', async () => {
      const queue = uniqueQueue();
      const jobs = [
        { id: 'a', queue, timeout: 30 },
        { id: 'b', queue, timeout: 30, run_at: PAST[1] },
        { id: 'c', queue, timeout: 30, run_at: '0001-01-01T00:00:00+01:00' },
      ];
      expectRangeProblem(await enqueueBatch(jobs), '/body/2/run_at');
      expect((await next(queue, 10)).status).to.equal(204);
    });

    it('through reschedule: the job stays in flight, unchanged', async () => {
      const queue = uniqueQueue();
      await enqueue({ id: 'r', queue, timeout: 30, run_at: PAST[2] });
      const [job] = (await next(queue)).body;
      const res = await call('POST', '/reschedule', { json: { id: 'r', queue, timeout: 30, run_at: '0000-01-01T00:00:00Z', run_id: job.run_id } });
      expectRangeProblem(res, '/body/run_at');
      expect((await next(queue)).status).to.equal(204);
      const heartbeat = await call('PATCH', '/v1/heartbeat', { query: { queue, job_id: 'r', run_id: job.run_id } });
      expect(heartbeat.status, 'still in flight under the same delivery').to.equal(202);
    });

    it('fails only its own request among concurrent single enqueues, and next keeps working', async () => {
      const queue = uniqueQueue();
      const good = Array.from({ length: 50 }, (_, i) => enqueue({ id: `good-${i}`, queue, timeout: 30, run_at: PAST[i % PAST.length] }));
      const bad = enqueue({ id: 'bad', queue, timeout: 30, run_at: '0001-01-01T00:00:00+01:00' });
      const more = Array.from({ length: 50 }, (_, i) => enqueue({ id: `late-${i}`, queue, timeout: 30 }));
      const [badRes, ...goodRes] = await Promise.all([bad, ...good, ...more]);
      expectRangeProblem(badRes!, '/body/run_at');
      for (const res of goodRes) expect(res.status, res.text).to.equal(202);

      const handed: any[] = [];
      for (;;) {
        const res = await next(queue, 7);
        expect(res.status, res.text).to.be.oneOf([200, 204]);
        if (res.status === 204) break;
        handed.push(...res.body);
      }
      expect(handed).to.have.length(100);
      expect(handed.map((j) => j.id)).not.to.include('bad');
      for (const job of handed) expect(job.run_at).to.match(UTC_RFC3339);
    });
  });
});

interface OwnServer {
  url(): string;
  /** Runs one statement on the server's database, outside the server. */
  sql(text: string, params: unknown[]): Promise<void>;
}

/**
 * A relay server of the test's own, for statements run behind its back: on PostgreSQL over a
 * connection of the test's own; on PGlite, which one process at a time may open, by stopping
 * the server, opening its data directory, and starting the server again on it.
 */
async function withOwnServer(fn: (server: OwnServer) => Promise<void>): Promise<void> {
  if (backend === 'postgres') {
    const url = process.env.DATABASE_URL!;
    return fn({ url: () => relay().url, sql: async (text, params) => void (await sql(url, text, params)) });
  }
  const dataDir = await mkdtemp(join(tmpdir(), 'relay-run-at-'));
  let running: RelayServer | undefined = await startRelay({ dataDir });
  try {
    await fn({
      url: () => running!.url,
      async sql(text, params) {
        await running!.close();
        running = undefined;
        const db = await PGlite.create(dataDir);
        try {
          await db.query(text, params);
        } finally {
          await db.close();
        }
        running = await startRelay({ dataDir });
      },
    });
  } finally {
    await running?.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}
