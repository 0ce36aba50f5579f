import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { defaults, parseConfig, type RelayServer } from '../../server/src/index.js';
import { openDatabase, type Database } from '../../server/src/db/index.js';
import { migrate } from '../../server/src/migrate.js';
import { Operations } from '../../server/src/operations.js';
import { ThroughputRecorder } from '../../server/src/throughput.js';
import { freshDatabase, type FreshDatabase } from '../helpers/postgres.js';
import { backend, call, enqueue, enqueueBatch, eventually, next, relay, startRelay, uniqueQueue } from '../helpers/relay.js';

/*
 * Throughput per queue and minute (GET /v1/throughput, GET /v1/queues/{queue}/throughput):
 * after a scripted workload and a flush, exactly the workload's jobs enqueued, completed and
 * failed for good, in the minute they happened; nothing before the flush (the request path
 * writes no count); a periodic flush, a flush at shutdown, and counting with metrics off; the
 * reaper's pruning of old buckets in bounded batches.
 */

const MINUTE = 60_000;
const minuteOf = (ms: number) => new Date(Math.floor(ms / MINUTE) * MINUTE).toISOString();
const throughputPath = (queue: string) => `/v1/queues/${encodeURIComponent(queue)}/throughput`;
const silent = pino({ level: 'silent' });

interface Totals {
  enqueued: number;
  completed: number;
  failed: number;
}

/**
 * On queue, through server: 7 jobs stored (3 single enqueues, a batch of 4 with one already
 * there, one that expires), 3 completed (one alone, two in a batch), 2 failed for good (by
 * `fail`, by a lease expiry); a retry, a reschedule and a cancel, none of them counted.
 */
async function workload(server: RelayServer, queue: string): Promise<Totals> {
  const at = { baseUrl: server.url };
  for (const id of ['a1', 'a2', 'a3']) expect((await enqueue({ id, queue, timeout: 30 }, server.url)).status).to.equal(202);
  const batch = [
    { id: 'b1', queue, timeout: 30, max_retries: 0 },
    { id: 'b2', queue, timeout: 30, max_retries: 1 },
    { id: 'b3', queue, timeout: 30 },
    { id: 'a1', queue, timeout: 30 },
  ];
  expect((await enqueueBatch(batch, server.url)).status).to.equal(202);
  const leased: any[] = (await next(queue, 6, server.url)).body;
  expect(leased.map((j) => j.id)).to.deep.equal(['a1', 'a2', 'a3', 'b1', 'b2', 'b3']);
  const runOf = (id: string) => leased.find((j) => j.id === id).run_id as string;

  expect((await call('DELETE', '/v1/complete', { ...at, query: { queue, job_id: 'a1', run_id: runOf('a1') } })).status).to.equal(200);
  const both = await call('POST', '/v1/complete/batch', { ...at, json: [{ queue, job_id: 'a2', run_id: runOf('a2') }, { queue, job_id: 'a3' }, { queue, job_id: 'gone' }] });
  expect(both.body.completed).to.have.length(2);
  expect((await call('POST', '/v1/fail', { ...at, query: { queue, job_id: 'b1', run_id: runOf('b1') }, json: { error: 'no' } })).body.outcome).to.equal('failed');
  expect((await call('POST', '/v1/fail', { ...at, query: { queue, job_id: 'b2', run_id: runOf('b2') }, json: { retry_in: 3600 } })).body.outcome).to.equal('retrying');
  expect((await call('POST', '/reschedule', { ...at, json: { id: 'b3', queue, timeout: 30, run_id: runOf('b3') } })).status).to.equal(202);
  expect((await call('DELETE', `/v1/queues/${encodeURIComponent(queue)}/jobs/b3`, at)).status).to.equal(204);

  // A lease of 0 s expires at once: the reaper fails it for good.
  expect((await enqueue({ id: 'x', queue, timeout: 0 }, server.url)).status).to.equal(202);
  expect((await next(queue, 1, server.url)).body[0].id).to.equal('x');
  await eventually(async () => (await call('GET', `/v1/queues/${encodeURIComponent(queue)}/jobs/x`, at)).body.status === 'failed');
  return { enqueued: 7, completed: 3, failed: 2 };
}

/**
 * Flushes server and the suite's shared one: on PostgreSQL the shared server's reaper may be
 * the one that finds the expired lease, and counts its failure.
 */
const flushAll = (server: RelayServer) => Promise.all([server.flushThroughput(), relay().flushThroughput()]);

const totalsOf = (t: any): Totals => ({ enqueued: t.enqueued, completed: t.completed, failed: t.failed });

/** The queue's throughput is exactly `want`, all of it in the minutes from startedAt to endedAt. */
async function expectThroughput(server: RelayServer, queue: string, want: Totals, startedAt: number, endedAt: number): Promise<void> {
  const res = await call('GET', throughputPath(queue), { baseUrl: server.url });
  const answeredAt = Date.now();
  expect(res.status, res.text).to.equal(200);
  const t = res.body;
  expect(t.queue).to.equal(queue);
  expect(totalsOf(t)).to.deep.equal(want);
  expect(t.per_minute).to.have.length(15);
  const during = new Set([minuteOf(startedAt), minuteOf(endedAt)]);
  const counted = t.per_minute.filter((m: any) => m.enqueued + m.completed + m.failed > 0).map((m: any) => m.minute);
  expect(counted.every((m: string) => during.has(m)), `counted in ${counted}, worked in ${[...during]}`).to.equal(true);
  const sum = (k: keyof Totals) => t.per_minute.reduce((n: number, m: any) => n + m[k], 0);
  expect({ enqueued: sum('enqueued'), completed: sum('completed'), failed: sum('failed') }).to.deep.equal(want);
  // Within one minute from the workload's start to the answer: all of it in the current bucket.
  if (minuteOf(startedAt) === minuteOf(answeredAt)) {
    expect(t.per_minute.at(-1).minute).to.equal(minuteOf(answeredAt));
    expect(totalsOf(t.per_minute.at(-1))).to.deep.equal(want);
  }
}

describe('throughput', function () {
  this.timeout(30_000);

  describe('after a scripted workload', () => {
    let server: RelayServer;
    const queue = uniqueQueue('tput');
    let want: Totals;
    let startedAt: number;
    let endedAt: number;
    before(async () => {
      // Flushed on demand only, so that what the API shows before the flush is telling.
      server = await startRelay({ throughputFlushSeconds: 60 });
      startedAt = Date.now();
      want = await workload(server, queue);
      endedAt = Date.now();
    });
    after(() => server?.close());

    it('nothing reaches the database before a flush: the requests wrote no count', async () => {
      const res = await call('GET', throughputPath(queue), { baseUrl: server.url });
      // Only this server counted these (another server's reaper may have counted the expiry).
      expect({ enqueued: res.body.enqueued, completed: res.body.completed }).to.deep.equal({ enqueued: 0, completed: 0 });
    });

    it('after a flush, exactly the jobs enqueued, completed and failed for good, in the minute they were', async () => {
      await flushAll(server);
      await expectThroughput(server, queue, want, startedAt, endedAt);
      // A second flush with nothing new adds nothing.
      await flushAll(server);
      await expectThroughput(server, queue, want, startedAt, endedAt);
    });

    it('GET /v1/throughput lists the queue with the same series; a queue with nothing is absent', async () => {
      const one = (await call('GET', throughputPath(queue), { baseUrl: server.url })).body;
      const all = (await call('GET', '/v1/throughput', { baseUrl: server.url })).body;
      const names = all.map((t: any) => t.queue);
      // In the database's byte order (COLLATE "C"), not JavaScript's UTF-16 order: they differ for
      // names with characters past U+FFFF, as the fuzz test writes to a shared database.
      expect([...names].sort((a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b)))).to.deep.equal(names);
      expect(all.find((t: any) => t.queue === queue)).to.deep.equal(one);
      expect(names).to.not.include(uniqueQueue('idle'));
    });

    it('minutes: how many buckets, the current one last; a queue with nothing has zeros; 1..60', async () => {
      const res = await call('GET', throughputPath(queue), { baseUrl: server.url, query: { minutes: 60 } });
      expect(res.body.per_minute).to.have.length(60);
      const minutes = res.body.per_minute.map((m: any) => Date.parse(m.minute));
      for (let i = 1; i < minutes.length; i++) expect(minutes[i] - minutes[i - 1]).to.equal(MINUTE);
      expect(totalsOf(res.body)).to.deep.equal(want);

      const idle = uniqueQueue('idle');
      const zero = (await call('GET', throughputPath(idle), { baseUrl: server.url, query: { minutes: 1 } })).body;
      expect(zero).to.deep.include({ queue: idle, enqueued: 0, completed: 0, failed: 0 });
      expect(zero.per_minute).to.have.length(1);
      expect(zero.per_minute[0]).to.include({ enqueued: 0, completed: 0, failed: 0 });

      for (const minutes of [0, 61, 1.5]) {
        expect((await call('GET', '/v1/throughput', { baseUrl: server.url, query: { minutes } })).status, String(minutes)).to.equal(400);
        expect((await call('GET', throughputPath(queue), { baseUrl: server.url, query: { minutes } })).status, String(minutes)).to.equal(400);
      }
    });
  });

  it('flushes on its own every --throughput-flush-interval seconds', async () => {
    const server = await startRelay({ throughputFlushSeconds: 0.05 });
    try {
      const queue = uniqueQueue('tput-interval');
      expect((await enqueueBatch([{ id: '1', queue, timeout: 30 }, { id: '2', queue, timeout: 30 }], server.url)).status).to.equal(202);
      await eventually(async () => (await call('GET', throughputPath(queue), { baseUrl: server.url })).body.enqueued === 2);
    } finally {
      await server.close();
    }
  });

  it('counts with metrics off (--no-metrics)', async () => {
    const server = await startRelay({ metrics: false, throughputFlushSeconds: 60 });
    try {
      expect((await call('GET', '/metrics', { baseUrl: server.url })).status).to.equal(404);
      const queue = uniqueQueue('tput-nometrics');
      const startedAt = Date.now();
      const want = await workload(server, queue);
      const endedAt = Date.now();
      await flushAll(server);
      await expectThroughput(server, queue, want, startedAt, endedAt);
    } finally {
      await server.close();
    }
  });

  it('a graceful shutdown flushes what was counted', async () => {
    const queue = uniqueQueue('tput-shutdown');
    // On the embedded database the data must outlive the server: a directory, not memory.
    const dir = backend === 'pglite' ? await mkdtemp(join(tmpdir(), 'relay-tput-')) : undefined;
    const options = { throughputFlushSeconds: 60, ...(dir ? { dataDir: dir } : {}) };
    try {
      const first = await startRelay(options);
      expect((await enqueue({ id: 'j', queue, timeout: 30 }, first.url)).status).to.equal(202);
      await first.close();
      const second = dir ? await startRelay(options) : relay();
      try {
        expect((await call('GET', throughputPath(queue), { baseUrl: second.url })).body.enqueued).to.equal(1);
      } finally {
        if (dir) await second.close();
      }
    } finally {
      if (dir) await rm(dir, { recursive: true, force: true });
    }
  });

  it('--throughput-flush-interval: seconds, fractions allowed, at most 60', () => {
    const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
      const parsed = parseConfig(argv, env);
      if (!('config' in parsed)) throw new Error('help');
      return parsed.config;
    };
    expect(parse([]).throughputFlushSeconds).to.equal(5);
    expect(parse(['--throughput-flush-interval', '0.5']).throughputFlushSeconds).to.equal(0.5);
    expect(parse([], { RELAY_THROUGHPUT_FLUSH_INTERVAL: '30' }).throughputFlushSeconds).to.equal(30);
    for (const bad of ['0', '61', 'soon', '']) expect(() => parse(['--throughput-flush-interval', bad]), bad).to.throw(/throughput-flush-interval/);
  });
});

describe('throughput: the reaper prunes old buckets', function () {
  this.timeout(60_000);
  // A database of its own: on a shared PostgreSQL every other server's reaper prunes too.
  let fresh: FreshDatabase | undefined;
  let db: Database;
  let operations: Operations;
  before(async () => {
    fresh = backend === 'postgres' ? await freshDatabase('relay_tput') : undefined;
    db = await openDatabase({ ...defaults, databaseUrl: fresh?.url, dataDir: 'memory://' }, silent);
    await migrate(db);
    operations = new Operations(db, { onAvailable: () => undefined, failedRetentionSeconds: 0 });
  });
  after(async () => {
    await db?.close();
    await fresh?.drop();
  });

  const buckets = async (queue: string) =>
    (await db.query<{ minute: string }>('SELECT minute FROM relay_queue_throughput WHERE queue = $1', [queue])).rows.length;

  it('deletes buckets past the kept hour, oldest first, in batches of 1000 (maintain(1): one batch); keeps the hour', async () => {
    const queue = uniqueQueue('tput-prune');
    const now = Date.now();
    let clock = now;
    const recorder = new ThroughputRecorder(db, { flushSeconds: 60, logger: silent, now: () => clock });
    // 2 500 minutes long past (one bucket each), then the current minute and the 58 before it
    // (still within the hour should the minute turn during the test).
    for (let i = 0; i < 2500; i++) {
      clock = now - (3000 - i) * MINUTE;
      recorder.completed(queue);
    }
    for (let i = 58; i >= 0; i--) {
      clock = now - i * MINUTE;
      recorder.enqueued(queue, 1);
    }
    await recorder.flush();
    expect(await buckets(queue)).to.equal(2559);

    expect((await operations.maintain(1)).throughputPruned).to.equal(1000);
    expect(await buckets(queue)).to.equal(1559);
    expect((await operations.maintain()).throughputPruned).to.equal(1500);
    expect(await buckets(queue)).to.equal(59);

    const hour = await operations.queueThroughput(queue, 60);
    expect(totalsOf(hour)).to.deep.equal({ enqueued: 59, completed: 0, failed: 0 });
    expect((await operations.maintain()).throughputPruned).to.equal(0);
  });

  it('a flush adds to the buckets another server wrote (the sum, not the last writer)', async () => {
    const queue = uniqueQueue('tput-add');
    const a = new ThroughputRecorder(db, { flushSeconds: 60, logger: silent });
    const b = new ThroughputRecorder(db, { flushSeconds: 60, logger: silent });
    a.enqueued(queue, 3);
    b.enqueued(queue, 4);
    a.failed(queue, 'fail', 1);
    b.completed(queue);
    await Promise.all([a.flush(), b.flush()]);
    expect(totalsOf(await operations.queueThroughput(queue, 5))).to.deep.equal({ enqueued: 7, completed: 1, failed: 1 });
  });
});
