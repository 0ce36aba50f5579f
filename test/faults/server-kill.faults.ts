import { expect } from 'chai';
import { Cluster } from './cluster.js';
import { longest, median, sleep, until } from './load.js';
import { expectReconciled, report } from './report.js';
import { Load } from './scenario.js';

/*
 * One of three servers SIGKILLed under load and started again 6 s later. Its clients (those
 * that list it first) move to the other two at once, and come back to it once it is up.
 */

describe('fault: a server SIGKILLed under load', () => {
  let cluster: Cluster | undefined;
  let load: Load | undefined;
  afterEach(async () => {
    await load?.abort();
    await cluster?.close();
  });

  it('loses no job, its clients move to the other servers, and come back', async () => {
    cluster = await Cluster.start({ servers: 3 });
    load = await new Load(cluster, { workers: 4, producers: 3, perSecond: 45 }).start();
    await sleep(4000);

    const killedAt = Date.now();
    await cluster.kill(1);
    await sleep(6000);
    const restartedAt = Date.now();
    await cluster.startServer(1);

    // Back: it takes requests again, from clients that had moved away.
    await until(async () => (await cluster!.counter(1, 'relay_jobs_enqueued_total')) > 0, 15_000, 'server 1 enqueued jobs again');
    await until(async () => (await cluster!.counter(1, 'relay_jobs_delivered_total')) > 0, 15_000, 'server 1 delivered jobs again');
    await sleep(2000);
    const servedAfterRestart = {
      enqueued: await cluster.counter(1, 'relay_jobs_enqueued_total'),
      delivered: await cluster.counter(1, 'relay_jobs_delivered_total'),
      completed: await cluster.counter(1, 'relay_jobs_completed_total'),
    };

    // The clients that preferred server 1: producer p1, workers w1 (and w4, if any).
    const p1 = load.producers[1]!.calls.filter((c) => c.at >= killedAt && c.at < restartedAt);
    const w1Completions = [...load.ledger.deliveries.values()].filter((d) => d.holder === 'w1' && d.completed !== undefined && d.completed > killedAt + 1000 && d.completed < restartedAt).length;

    const reconciliation = await load.finish();
    const measured = {
      'longest enqueue of the producer that preferred server 1, while it was down (ms)': longest(p1.map((c) => c.ms)),
      'its median enqueue then (ms)': median(p1.map((c) => c.ms)),
      'its enqueues while server 1 was down': p1.length,
      'jobs completed while server 1 was down by the worker that preferred it': w1Completions,
      'served by server 1 after its restart': servedAfterRestart,
    };
    await report('server-kill', reconciliation, measured);
    expectReconciled(reconciliation);
    expect(p1.every((c) => c.ok), 'every enqueue of p1 during the outage succeeded').to.equal(true);
    // Without fail-over it would retry the dead server until it came back, 6 s later.
    expect(longest(p1.map((c) => c.ms)), 'p1 did not wait out the outage').to.be.below(3000);
    expect(w1Completions, 'w1 kept working during the outage').to.be.greaterThan(0);
  });
});
