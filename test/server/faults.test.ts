import { PGlite } from '@electric-sql/pglite';
import { expect } from 'chai';
import { embeddedDataDir, killAll, removeDir, spawnRelay, type RelayProcess } from '../helpers/process.js';
import { expectInternalErrorsWithoutLeak } from '../helpers/problems.js';
import { call, eventually, startRelay, uniqueQueue } from '../helpers/relay.js';

/*
 * "A fault loses no job", on the embedded database: the relay-server process stopped or
 * killed and started again on the same RELAY_DATA_DIR. (The PostgreSQL faults, a database
 * that goes away, are in test/postgres/faults.test.ts.)
 */

interface Leased {
  id: string;
  attempt: number;
  run_id: string;
  state?: unknown;
}

async function lease(url: string, queue: string, n = 1000): Promise<Leased[]> {
  const res = await call('GET', '/v1/next', { baseUrl: url, query: { queue, num_jobs: n } });
  expect(res.status, res.text).to.be.oneOf([200, 204]);
  return res.status === 200 ? res.body : [];
}

describe('faults on the embedded database', function () {
  this.timeout(30_000);
  let dataDir: string;
  let relay: RelayProcess | undefined;

  beforeEach(async function () {
    this.timeout(60_000);
    dataDir = await embeddedDataDir();
  });
  afterEach(async () => {
    await relay?.stop('SIGKILL');
    relay = undefined;
    await removeDir(dataDir);
  });
  after(killAll);

  it('a restart loses no job: waiting jobs stay, in-flight ones stay leased until their lease ends', async () => {
    const queue = uniqueQueue('restart');
    const short = Array.from({ length: 10 }, (_, i) => ({ id: `short-${i}`, queue, timeout: 3, max_retries: 1 }));
    const long = Array.from({ length: 5 }, (_, i) => ({ id: `long-${i}`, queue, timeout: 60 }));
    const waiting = Array.from({ length: 30 }, (_, i) => ({ id: `wait-${i}`, queue, timeout: 60, payload: { i } }));

    relay = await spawnRelay({ env: { RELAY_DATA_DIR: dataDir } });
    let res = await call('POST', '/enqueue/batch', { baseUrl: relay.url, json: [...short, ...long, ...waiting] });
    expect(res.status, res.text).to.equal(202);
    const leasedAt = Date.now();
    const inFlight = await lease(relay.url, queue, short.length + long.length);
    expect(inFlight.map((j) => j.id)).to.deep.equal([...short, ...long].map((j) => j.id));
    // State stored by a heartbeat must survive the restart and the retry.
    for (const job of inFlight.slice(0, 3)) {
      res = await call('PATCH', '/v1/heartbeat', { baseUrl: relay.url, query: { queue, job_id: job.id }, json: { step: job.id } });
      expect(res.status, res.text).to.equal(202);
    }
    expect(await relay.stop('SIGTERM')).to.deep.equal({ code: 0, signal: null });

    relay = await spawnRelay({ env: { RELAY_DATA_DIR: dataDir } });
    // The long leases are still in flight on the new server: a heartbeat renews them.
    for (const job of long) {
      res = await call('PATCH', '/v1/heartbeat', { baseUrl: relay.url, query: { queue, job_id: job.id } });
      expect(res.status, `${job.id}: ${res.text}`).to.equal(202);
    }
    // Every waiting job is there, in order, once.
    const first = await lease(relay.url, queue);
    const firstIds = first.map((j) => j.id);
    expect(firstIds.filter((id) => id.startsWith('wait-'))).to.deep.equal(waiting.map((j) => j.id));
    expect(firstIds.filter((id) => id.startsWith('long-'))).to.deep.equal([]);
    // The short leases come back once they have ended, not before, with a retry counted
    // and their state kept.
    const back: Leased[] = first.filter((j) => j.id.startsWith('short-'));
    await eventually(async () => {
      back.push(...(await lease(relay!.url, queue)));
      return back.length >= short.length;
    }, 15_000, 100);
    expect(Date.now() - leasedAt).to.be.at.least(3000);
    expect(back.map((j) => j.id).sort()).to.deep.equal(short.map((j) => j.id).sort());
    for (const job of back) {
      expect(job.attempt, job.id).to.equal(2);
      if (['short-0', 'short-1', 'short-2'].includes(job.id)) expect(job.state).to.deep.equal({ step: job.id });
      else expect(job).not.to.have.property('state');
    }
    // And nothing else: the long ones complete, the queue is then empty.
    for (const job of long) {
      res = await call('DELETE', '/v1/complete', { baseUrl: relay.url, query: { queue, job_id: job.id } });
      expect(res.status, res.text).to.equal(200);
    }
    expect(await lease(relay.url, queue)).to.deep.equal([]);
  });

  it('a crash (SIGKILL) mid-run loses no acknowledged job', async () => {
    const queue = uniqueQueue('crash');
    relay = await spawnRelay({ env: { RELAY_DATA_DIR: dataDir } });
    const url = relay.url;
    // Four producers enqueue one job at a time until the process dies under them.
    const acknowledged: string[] = [];
    let killed = false;
    const producers = Array.from({ length: 4 }, async (_, p) => {
      for (let i = 0; ; i++) {
        const id = `p${p}-${i}`;
        try {
          const res = await call('POST', '/enqueue', { baseUrl: url, json: { id, queue, timeout: 30 } });
          if (res.status === 202) acknowledged.push(id);
          else throw new Error(`enqueue answered ${res.status}: ${res.text}`);
        } catch (err) {
          if (!killed) throw err;
          return; // the server is gone
        }
      }
    });
    await eventually(async () => acknowledged.length >= 40, 20_000, 10);
    killed = true;
    relay.child.kill('SIGKILL');
    await Promise.all(producers);
    expect((await relay.exited).signal).to.equal('SIGKILL');

    relay = await spawnRelay({ env: { RELAY_DATA_DIR: dataDir }, startTimeoutMs: 30_000 });
    const stored = new Set((await lease(relay.url, queue)).map((j) => j.id));
    const lost = acknowledged.filter((id) => !stored.has(id));
    expect(lost, `${lost.length} of ${acknowledged.length} acknowledged jobs lost`).to.deep.equal([]);
  });

  it('a 500 (here: the schema damaged behind the server) carries neither SQL nor a stack trace', async () => {
    // Create the schema with one server, then damage it with the server stopped: PGlite
    // holds its data directory exclusively.
    const queue = uniqueQueue('broken');
    let server = await startRelay({ databaseUrl: undefined, dataDir });
    await server.close();
    const db = await PGlite.create(dataDir);
    await db.exec('ALTER TABLE relay_jobs RENAME TO relay_jobs_moved_away');
    await db.close();

    server = await startRelay({ databaseUrl: undefined, dataDir });
    try {
      const requests: Array<[string, string, Parameters<typeof call>[2]]> = [
        ['POST', '/enqueue', { json: { id: 'a', queue, timeout: 5 } }],
        ['POST', '/enqueue/batch', { json: [{ id: 'b', queue, timeout: 5 }] }],
        ['GET', '/v1/next', { query: { queue } }],
        ['PATCH', '/v1/heartbeat', { query: { queue, job_id: 'a' } }],
        ['DELETE', '/v1/complete', { query: { queue, job_id: 'a' } }],
      ];
      await expectInternalErrorsWithoutLeak(server.url, requests);
    } finally {
      await server.close();
    }
  });
});
