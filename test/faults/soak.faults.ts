import { expect } from 'chai';
import { Cluster, type Memory } from './cluster.js';
import { sleep } from './load.js';
import { expectReconciled, report } from './report.js';
import { Load } from './scenario.js';

/*
 * Soak: three servers, eight workers, producers at a steady rate, and server 1 restarted
 * (SIGTERM, then started again) half-way. It ends with the ledger's reconciliation, and each
 * server process's memory after a warm-up, half-way and at the end: the old generation of V8's
 * heap (what a leak fills) may not grow past OLD_SPACE_BOUND, nor the resident set past
 * RSS_BOUND, between a process's first sample and its last.
 *
 * RELAY_SOAK_SECONDS sets its length: 60 in CI (`npm run test:faults`), 300 for
 * `npm run test:soak`.
 */

const SECONDS = Number(process.env.RELAY_SOAK_SECONDS ?? 60);
const WARM_UP_MS = 10_000;
const MiB = 1024 * 1024;
/** The most a process's old space may grow from its first sample to its last. */
const OLD_SPACE_BOUND = 32 * MiB;
/** The most its resident set may grow meanwhile. */
const RSS_BOUND = 128 * MiB;

const mib = (bytes: number) => Math.round((bytes / MiB) * 10) / 10;
const show = (m: Memory) => ({ rssMiB: mib(m.rssBytes), oldSpaceMiB: mib(m.oldSpaceBytes) });

describe(`soak: ${SECONDS} s of load on three servers, one restarted half-way`, () => {
  let cluster: Cluster | undefined;
  let load: Load | undefined;
  afterEach(async () => {
    await load?.abort();
    await cluster?.close();
  });

  it('loses no job, and no server process grows past the memory bounds', async function () {
    this.timeout((SECONDS + 180) * 1000);
    expect(SECONDS, 'RELAY_SOAK_SECONDS').to.be.at.least(40);
    cluster = await Cluster.start({ servers: 3 });
    load = await new Load(cluster, { workers: 8, concurrency: 4, producers: 4, perSecond: 40 }).start();
    const began = Date.now();
    const at = (ms: number) => sleep(Math.max(0, began + ms - Date.now()));
    const sample = () => Promise.all(cluster!.servers.map((_, i) => cluster!.memory(i)));

    await at(WARM_UP_MS);
    const start = await sample();
    await at((SECONDS * 1000) / 2);
    const middle = await sample();
    await cluster.restart(1);
    // The restarted process's own first sample, after its warm-up.
    await at((SECONDS * 1000) / 2 + WARM_UP_MS);
    const restarted = await cluster.memory(1);
    await at(SECONDS * 1000);
    const end = await sample();

    const reconciliation = await load.finish(60_000);
    // Each process: its first sample and its last (server 1's second process from its own warm-up).
    const firsts = [start[0]!, restarted, start[2]!];
    const growth = end.map((m, i) => ({ rssMiB: mib(m.rssBytes - firsts[i]!.rssBytes), oldSpaceMiB: mib(m.oldSpaceBytes - firsts[i]!.oldSpaceBytes) }));
    const enqueues = load.producers.flatMap((p) => p.calls);
    await report(SECONDS > 60 ? `soak-${SECONDS}s` : 'soak', reconciliation, {
      'seconds of load': SECONDS,
      'jobs per second': Math.round(reconciliation.accepted / SECONDS),
      'memory after the warm-up (server 0, 1, 2)': start.map(show),
      'memory half-way, before server 1 restarted': middle.map(show),
      'server 1 after its restart and warm-up': show(restarted),
      'memory at the end': end.map(show),
      'growth from each process\'s first sample to the end': growth,
      bounds: { oldSpaceMiB: mib(OLD_SPACE_BOUND), rssMiB: mib(RSS_BOUND) },
      'enqueues that failed': enqueues.filter((c) => !c.ok).length,
      'drain after the load (ms)': load.settleMs,
    });
    expectReconciled(reconciliation);
    for (const [i, m] of end.entries()) {
      expect(m.oldSpaceBytes - firsts[i]!.oldSpaceBytes, `server ${i}: old space growth`).to.be.below(OLD_SPACE_BOUND);
      expect(m.rssBytes - firsts[i]!.rssBytes, `server ${i}: resident set growth`).to.be.below(RSS_BOUND);
    }
  });
});
