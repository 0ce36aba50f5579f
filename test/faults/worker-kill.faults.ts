import { expect } from 'chai';
import { Cluster } from './cluster.js';
import { sleep, until } from './load.js';
import { expectReconciled, report } from './report.js';
import { LEASE_SECONDS, Load } from './scenario.js';

/*
 * Two of four workers SIGKILLed while their handlers run, and two new ones started. The jobs
 * they held come back when their leases end and are run by the others; none is lost, and no
 * job runs in two workers at once.
 */

describe('fault: workers SIGKILLed mid-job', () => {
  let cluster: Cluster | undefined;
  let load: Load | undefined;
  afterEach(async () => {
    await load?.abort();
    await cluster?.close();
  });

  it('loses no job: what the killed workers held runs again elsewhere once its lease ends, never twice at once', async () => {
    cluster = await Cluster.start({ servers: 2 });
    // Longer handlers (200–800 ms), so that a worker holds jobs in process when it is killed;
    // 16 slots take about 32 jobs a second, 16 while two workers are down.
    const job = (n: number) => ({ timeout: LEASE_SECONDS, max_retries: 2, payload: { ms: 200 + ((n * 37) % 601), ...(n % 50 === 7 ? { fail: true } : {}) } });
    load = await new Load(cluster, { workers: 4, producers: 2, perSecond: 16, job }).start();
    await sleep(3000);

    const victims = load.workers.slice(0, 2);
    await until(() => victims.every((w) => w.running() > 0), 10_000, 'both workers to be killed have jobs in process');
    await Promise.all(victims.map((w) => w.kill()));
    const names = new Set(victims.map((w) => w.name));
    // Their handlers were running: started, neither returned nor let go before the kill.
    const held = [...load.ledger.deliveries.values()].filter((d) => names.has(d.holder) && d.started !== undefined && d.returned === undefined && d.lost === undefined);
    const replacements = [load.addWorker(), load.addWorker()];
    await Promise.all(replacements.map((w) => w.ready));
    await sleep(6000);

    const reconciliation = await load.finish();
    const byId = load.ledger.byId();
    // What the killed workers held: each ran again, after its lease, in another worker.
    const afterKill = held.map((d) => {
      const list = byId.get(d.id)!;
      return list[list.indexOf(d) + 1];
    });
    const measured = {
      'jobs in process in the killed workers': held.length,
      'of those, run again by another worker': afterKill.filter((d) => d?.started !== undefined).length,
      'least time from a killed lease\'s end to its next delivery (ms)': Math.min(...held.map((d, i) => (afterKill[i]?.received ?? Infinity) - (Math.max(d.leaseSent, ...d.renewals) + d.timeoutMs))),
      'drain after the load (ms)': load.settleMs,
    };
    await report('worker-kill', reconciliation, measured);
    expectReconciled(reconciliation);
    expect(held.length, 'jobs in process when the workers were killed').to.be.greaterThan(0);
    for (const [i, d] of held.entries()) {
      expect(afterKill[i], `${d.id}, held by killed ${d.holder}, was delivered again`).not.to.equal(undefined);
      expect(afterKill[i]!.holder).not.to.equal(d.holder);
    }
  });
});
