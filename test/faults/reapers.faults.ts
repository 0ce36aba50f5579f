import { expect } from 'chai';
import { RelayClient } from '@relay-ts/client';
import { nodeTransport } from '@relay-ts/worker';
import { sql } from '../helpers/postgres.js';
import { Cluster } from './cluster.js';
import { Ledger } from './ledger.js';
import { Producer, settled, sleep, type Payload } from './load.js';
import { expectReconciled, report } from './report.js';

/*
 * The reapers of three servers (every 50 ms each) racing on the same expired jobs. Consumers,
 * one on each server, lease jobs in batches and let the leases expire: every job's lease ends
 * together with those of its batch, and all three reapers find them at once. Jobs with
 * max_retries 2 are let expire twice and completed on their third delivery; jobs with
 * max_retries 1 are let expire twice, and so fail. A retry counted twice would fail a job
 * early, or skip an attempt number; one not counted would deliver it a fourth time.
 */

const LEASE_SECONDS = 1;
const QUEUE = 'reap';

describe('fault: the reapers of three servers racing on the same expired jobs', () => {
  let cluster: Cluster | undefined;
  const stop = { stopped: false };
  let consumers: Promise<void> | undefined;
  afterEach(async () => {
    stop.stopped = true;
    await consumers;
    await cluster?.close();
  });

  it('count each lease expiry once: exactly max_retries + 1 deliveries, attempts 1, 2, 3 in order, then completed or failed', async () => {
    cluster = await Cluster.start({ servers: 3, reapInterval: 0.05 });
    const ledger = new Ledger();

    /** Consumer `i`, on server `i`: takes what is there every 200 ms, completes a job on its last allowed delivery if it has max_retries 2, lets every other lease expire. */
    const consume = async (i: number) => {
      const client = new RelayClient<Payload>({ baseUrl: cluster!.servers[i]!.url, ...nodeTransport() });
      while (!stop.stopped) {
        const sent = Date.now();
        const jobs = await client.next(QUEUE, { numJobs: 500 });
        const got = Date.now();
        for (const job of jobs) {
          const d = ledger.delivery(job.run_id, () => ({ id: job.id, run: job.run_id, holder: `c${i}`, timeoutMs: job.timeout * 1000, leaseSent: sent, received: got, renewals: [], attempt: job.attempt }));
          if (job.max_retries === 2 && job.attempt === 3) {
            d.started = Date.now();
            await client.complete(QUEUE, job.id, { runId: job.run_id });
            d.returned = d.completed = Date.now();
          }
        }
        await sleep(200);
      }
    };
    consumers = Promise.all([0, 1, 2].map(consume)).then(() => undefined);

    const job = (n: number) => ({ timeout: LEASE_SECONDS, max_retries: n % 2 === 0 ? 2 : 1, payload: { ms: 0 } });
    const producer = new Producer({ name: 'p0', urls: cluster.urlsFrom(0), queue: QUEUE, perSecond: 60, job }, ledger).start();
    await sleep(6000);
    await producer.stop();
    await settled(cluster.db.url, QUEUE, 20_000);
    stop.stopped = true;
    await consumers;

    const reconciliation = await ledger.reconcile(cluster.db.url, QUEUE);
    const expiredBy = await Promise.all(
      [0, 1, 2].map(async (i) =>
        (await cluster!.counter(i, 'relay_jobs_retried_total', 'cause="lease_expired"')) + (await cluster!.counter(i, 'relay_jobs_failed_total', 'cause="lease_expired"')),
      ),
    );
    const byId = ledger.byId();
    const wrong: string[] = [];
    for (const id of ledger.accepted) {
      const attempts = (byId.get(id) ?? []).map((d) => d.attempt);
      const expected = Number(id.slice(id.lastIndexOf('-') + 1)) % 2 === 0 ? [1, 2, 3] : [1, 2];
      if (JSON.stringify(attempts) !== JSON.stringify(expected)) wrong.push(`${id}: ${JSON.stringify(attempts)}`);
    }
    const failedRows = await sql<{ id: string; attempts: number; reason: string }>(cluster.db.url, 'SELECT id, attempts, reason FROM relay_failed_jobs WHERE queue = $1', [QUEUE]);
    const measured = {
      'lease expiries counted, by each server\'s reaper': expiredBy,
      'lease expiries there were (two per job)': 2 * reconciliation.accepted,
      'jobs delivered with other attempts than expected': wrong.length,
    };
    await report('reapers', reconciliation, measured);
    expectReconciled(reconciliation);
    expect(wrong.slice(0, 10), 'attempt numbers').to.deep.equal([]);
    const mr1 = [...ledger.accepted].filter((id) => Number(id.slice(id.lastIndexOf('-') + 1)) % 2 === 1);
    expect(failedRows.map((r) => r.id).sort(), 'exactly the jobs with max_retries 1 failed').to.deep.equal(mr1.sort());
    for (const row of failedRows) expect(row, row.id).to.include({ attempts: 2, reason: 'lease expired' });
    expect(expiredBy.reduce((a, b) => a + b, 0), 'each expiry counted once, over the three reapers').to.equal(2 * reconciliation.accepted);
    expect(expiredBy.filter((n) => n > 0).length, 'more than one reaper took part').to.be.at.least(2);
  });
});
