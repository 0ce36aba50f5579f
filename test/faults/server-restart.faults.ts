import { expect } from 'chai';
import { Cluster } from './cluster.js';
import { longest, sleep, until } from './load.js';
import { expectReconciled, report } from './report.js';
import { Load } from './scenario.js';

/*
 * The one server of its clients restarted (SIGTERM, then started again at the same address)
 * while workers hold jobs in process. The clients know only this server, so they ride the
 * restart out by retrying: the jobs in process keep their leases (20 s, longer than the
 * restart) and are completed by the workers that hold them, and no job is lost.
 *
 * The clients retry every 2 s at most, for up to a minute. The default retries (5 attempts)
 * wait about 1.5 s in all on average (full jitter over 0.2, 0.4, 0.8 and 1.6 s): a restart
 * that takes longer, as on a busy machine, makes enqueues fail and completions be given up
 * (the job then runs again after its lease). Clients of one address that see restarts want
 * retries like these, or several servers.
 */

const LEASE_SECONDS = 20;
const RIDE_OUT_A_RESTART = { maxAttempts: 30, maxDelayMs: 2000 };

describe('fault: a server restarted with jobs in flight', () => {
  let cluster: Cluster | undefined;
  let load: Load | undefined;
  afterEach(async () => {
    await load?.abort();
    await cluster?.close();
  });

  it('loses no job; the jobs in process keep their leases and are completed by their workers', async () => {
    cluster = await Cluster.start({ servers: 1 });
    // Handlers of 0.3–1.5 s (0.9 s on average: 24 slots take about 26 jobs a second): jobs are in process across the restart.
    const job = (n: number) => ({ timeout: LEASE_SECONDS, max_retries: 2, payload: { ms: 300 + ((n * 97) % 1201), ...(n % 50 === 7 ? { fail: true } : {}) } });
    load = await new Load(cluster, { workers: 3, concurrency: 8, producers: 2, perSecond: 15, job, retry: RIDE_OUT_A_RESTART }).start();
    await sleep(3000);

    await until(() => load!.workers.every((w) => w.running() > 0), 10_000, 'every worker has jobs in process');
    const stoppingAt = Date.now();
    const inProcess = [...load.ledger.deliveries.values()].filter((d) => d.started !== undefined && d.returned === undefined);
    await cluster.stop(0);
    const downAt = Date.now();
    await cluster.startServer(0);
    const upAt = Date.now();
    await sleep(5000);

    const reconciliation = await load.finish();
    const calls = load.producers.flatMap((p) => p.calls.filter((c) => c.at >= stoppingAt - 2000 && c.at < upAt));
    const byHolder = inProcess.filter((d) => d.completed !== undefined || d.failed !== undefined);
    const measured = {
      'jobs in process when the restart began': inProcess.length,
      'of those, completed (or failed, as planned) by the worker that held them': byHolder.length,
      'SIGTERM to exit (ms)': downAt - stoppingAt,
      'exit to answering again (ms)': upAt - downAt,
      'longest enqueue around the restart (ms)': longest(calls.map((c) => c.ms)),
      'drain after the load (ms)': load.settleMs,
    };
    await report('server-restart', reconciliation, measured);
    expectReconciled(reconciliation);
    expect(inProcess.length).to.be.greaterThan(0);
    expect(upAt - stoppingAt, 'the restart took less than a lease').to.be.below(LEASE_SECONDS * 1000);
    expect(reconciliation.leasesLost, `leases lost: ${JSON.stringify(reconciliation.leaseLostCauses)}`).to.equal(0);
    expect(byHolder.map((d) => d.id), 'the jobs in process were settled by their workers').to.have.length(inProcess.length);
    expect(reconciliation.enqueueErrors, 'enqueues that failed').to.equal(0);
  });
});
