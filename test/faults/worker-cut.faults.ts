import { expect } from 'chai';
import { RelayClient } from '@relay-ts/client';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { Cluster } from './cluster.js';
import { sleep, until, type Payload } from './load.js';
import { expectReconciled, report } from './report.js';
import { Load } from './scenario.js';

/*
 * A worker cut from its server (every packet dropped, nothing closed) for longer than its
 * leases, while its handlers run. By its own lease clock it aborts them before the server can
 * hand the jobs to another worker; the others then run them. Back on the network, it works on.
 */

const LONG_JOBS = 6;
const LEASE_SECONDS = 2;
const CUT_MS = 7000;

describe('fault: a worker cut from the server longer than its leases', () => {
  let cluster: Cluster | undefined;
  let load: Load | undefined;
  let path: TcpProxy | undefined;
  afterEach(async () => {
    await load?.abort();
    await path?.close();
    await cluster?.close();
  });

  it('its handlers are aborted before another worker gets their jobs; no job is lost or run twice at once', async () => {
    // A reaper every second: the production default is 5 s; the worker's clock does not count on either.
    cluster = await Cluster.start({ servers: 2, reapInterval: 1 });
    load = new Load(cluster, { workers: 2, producers: 2, perSecond: 30 });
    // The cut worker reaches server 0 through a path of its own, and knows no other server.
    path = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(cluster.servers[0]!.url).port) });
    const cut = load.addWorker([`http://127.0.0.1:${path.port}`], LONG_JOBS);

    // Long jobs (a minute on their first delivery), taken by the cut worker alone.
    const producer = new RelayClient<Payload>({ baseUrl: cluster.servers[1]!.url });
    const long = Array.from({ length: LONG_JOBS }, (_, i) => `long-${i}`);
    for (const id of long) {
      load.ledger.attempted.set(id, Date.now());
      await producer.enqueue({ id, queue: load.queue, timeout: LEASE_SECONDS, max_retries: 3, payload: { ms: 50, firstMs: 60_000 } });
      load.ledger.accepted.add(id);
    }
    await cut.ready;
    await until(() => cut.running() === LONG_JOBS, 10_000, 'the cut worker runs the long jobs');
    await load.start();
    await sleep(2000);

    await path.cut('blackhole');
    await sleep(CUT_MS);
    await path.restore();
    // Back: it takes jobs again.
    const before = [...load.ledger.deliveries.values()].filter((d) => d.holder === cut.name).length;
    await until(() => [...load!.ledger.deliveries.values()].filter((d) => d.holder === cut.name).length > before, 15_000, 'the cut worker takes jobs again');

    const reconciliation = await load.finish();
    const byId = load.ledger.byId();
    const margins = long.map((id) => {
      const [first, second] = byId.get(id)!;
      expect(first!.holder, id).to.equal(cut.name);
      expect(first!.lost, `${id}: the cut worker let go of it`).to.be.a('number');
      expect(first!.lostWhy, id).to.match(/no heartbeat was answered within the lease/);
      expect(second, `${id} was delivered again`).not.to.equal(undefined);
      expect(second!.holder).not.to.equal(cut.name);
      expect(second!.completed, `${id} completed by ${second!.holder}`).to.be.a('number');
      return second!.received - first!.lost!;
    });
    await report('worker-cut', reconciliation, {
      'handlers of the cut worker aborted before another worker got their job': `${margins.filter((m) => m > 0).length} of ${LONG_JOBS}`,
      'least time from an abort to the next delivery of its job (ms)': Math.min(...margins),
      'drain after the load (ms)': load.settleMs,
    });
    expectReconciled(reconciliation);
    expect(margins.every((m) => m > 0), `aborted before the next delivery: ${margins}`).to.equal(true);
  });
});
