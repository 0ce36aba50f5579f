import { expect } from 'chai';
import { Cluster } from './cluster.js';
import { longest, median, sleep, until } from './load.js';
import { expectReconciled, report } from './report.js';
import { Load } from './scenario.js';

/*
 * One server's database cut for 5 s under steady load (the proxy between it and PostgreSQL
 * resets its connections and refuses new ones; the shared PostgreSQL is untouched). Probes
 * sent straight to that server, without retries, see every request answered within 2 s: 429
 * with Retry-After, /health 503, never a 500, never a request left hanging. Once the
 * database is back, the server recovers by itself; the clients that moved away come back.
 */

const CUT_MS = 5000;
/** A probe with no answer after this is a hung request. */
const HUNG_MS = 10_000;

interface Probe {
  kind: 'health' | 'enqueue' | 'next';
  sent: number;
  ms: number;
  /** 0: no answer (hung, or the connection failed). */
  status: number;
  retryAfter: string | null;
}

/** Sends one kind of request to `url` in a loop until `stop`, each on its own, recording how it went. */
async function probe(url: string, kind: Probe['kind'], probes: Probe[], stop: { stopped: boolean }): Promise<void> {
  for (let n = 0; !stop.stopped; n++) {
    const sent = Date.now();
    let status = 0;
    let retryAfter: string | null = null;
    try {
      const init: RequestInit = { signal: AbortSignal.timeout(HUNG_MS) };
      const target =
        kind === 'health' ? `${url}/health`
        : kind === 'next' ? `${url}/v1/next?queue=probe&num_jobs=1`
        : `${url}/enqueue`;
      if (kind === 'enqueue') Object.assign(init, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: `probe-${sent}-${n}`, queue: 'probe', timeout: 60 }) });
      const res = await fetch(target, init);
      await res.arrayBuffer();
      status = res.status;
      retryAfter = res.headers.get('retry-after');
    } catch {
      status = 0;
    }
    probes.push({ kind, sent, ms: Date.now() - sent, status, retryAfter });
    await sleep(50);
  }
}

describe('fault: one server cut from PostgreSQL for 5 s', () => {
  let cluster: Cluster | undefined;
  let load: Load | undefined;
  afterEach(async () => {
    await load?.abort();
    await cluster?.close();
  });

  it('answers 429 with Retry-After within 2 s, /health 503, never a 500 or a hung request; recovers by itself; loses no job', async () => {
    cluster = await Cluster.start({ servers: 3 });
    load = await new Load(cluster, { workers: 4, producers: 3, perSecond: 45 }).start();
    const probes: Probe[] = [];
    const stop = { stopped: false };
    const probing = Promise.all((['health', 'enqueue', 'next'] as const).map((kind) => probe(cluster!.servers[0]!.url, kind, probes, stop)));
    const lastProbes = () => JSON.stringify(probes.slice(-6)) + '\n' + cluster!.tails();
    let cutAt: number;
    let restoredAt: number;
    let healthyAt: number;
    try {
      await sleep(3000);
      cutAt = Date.now();
      await cluster.cutDatabase(0);
      await sleep(CUT_MS);
      restoredAt = Date.now();
      await cluster.restoreDatabase(0);
      // Recovers by itself: no restart, nothing done to it.
      await until(() => probes.some((p) => p.kind === 'health' && p.sent > restoredAt && p.status === 200), 15_000, `GET /health 200 after the cut; last probes ${lastProbes()}`);
      healthyAt = probes.find((p) => p.kind === 'health' && p.sent > restoredAt && p.status === 200)!.sent;
      const answered = () => (['enqueue', 'next'] as const).every((kind) => probes.some((p) => p.kind === kind && p.sent > healthyAt && p.status >= 200 && p.status < 300));
      await until(answered, 10_000, `enqueue and next answered again; last probes ${lastProbes()}`);
      await sleep(2000);
    } finally {
      stop.stopped = true;
      await probing;
    }

    const during = probes.filter((p) => p.sent >= cutAt && p.sent < restoredAt);
    // Sent once the cut was surely in place, and answered before it ended.
    const settledDuring = during.filter((p) => p.sent >= cutAt + 100 && p.sent + p.ms < restoredAt);
    const producersDuring = load.producers.flatMap((p) => p.calls.filter((c) => c.at >= cutAt && c.at < restoredAt));
    const reconciliation = await load.finish();
    const statuses = (kind: Probe['kind']) => [...new Set(settledDuring.filter((p) => p.kind === kind).map((p) => p.status))].sort();
    const measured = {
      'longest request to the cut server during the cut (ms)': longest(during.map((p) => p.ms)),
      'median request to it then (ms)': median(during.map((p) => p.ms)),
      'probes during the cut': during.length,
      'their statuses (health, enqueue, next)': [statuses('health'), statuses('enqueue'), statuses('next')],
      '/health 200 again after the database came back (ms)': healthyAt - restoredAt,
      'longest enqueue of the producers during the cut, retries and fail-over included (ms)': longest(producersDuring.map((c) => c.ms)),
      'drain after the load (ms)': load.settleMs,
    };
    await report('database-cut', reconciliation, measured);
    expectReconciled(reconciliation);

    expect(during.length, 'probes during the cut').to.be.greaterThan(20);
    for (const p of during) {
      const what = `${p.kind} sent ${p.sent - cutAt} ms into the cut: ${p.status} after ${p.ms} ms`;
      expect(p.status, `${what}: an answer, not a hung request or a dropped connection`).not.to.equal(0);
      expect(p.status, `${what}: never a 500`).not.to.equal(500);
      expect(p.ms, what).to.be.below(2000);
    }
    for (const p of settledDuring) {
      const what = `${p.kind} sent ${p.sent - cutAt} ms into the cut: ${p.status}`;
      if (p.kind === 'health') expect(p.status, what).to.equal(503);
      else {
        expect(p.status, what).to.equal(429);
        expect(p.retryAfter, `${what}: Retry-After`).to.match(/^\d+$/);
      }
    }
    expect(producersDuring.every((c) => c.ok), 'every enqueue of the producers during the cut succeeded').to.equal(true);
  });
});
