/**
 * npm run bench:ab -- --optimisation hand-off|known-empty|coalescing|idempotency-keys|metrics|processes|cheap-validation|settle-on-poll [--runs N] [--quick]
 * npm run bench:ab -- --against <git ref> [--this <git ref>] [--runs N] [--quick]
 * [--only latency]: the latency phase alone (to chase a latency figure with more runs in the time).
 *
 * A same-run A/B of one of the server's optimisations: servers with it ("on") and without it
 * (RELAY_BENCH_DISABLE, "off") run the same phases on the same PostgreSQL, interleaved, with
 * the order of the two alternating from run to run. Each optimisation stays only while its
 * figures here show its worth (issue 11). Per variant and run:
 * - latency from enqueue to processing start at 200 jobs/s with a long-polling worker (the
 *   hand-off and known-empty paths), with the statements (transactions) per job;
 * - single enqueues from 8 producers, and per-job completion with 50 worker slots (the
 *   coalesced paths), in jobs per second;
 * - the HTTP requests per job the clients sent, and the server's CPU time per job in the two
 *   throughput phases: unlike throughput and latency, CPU per job changes little with what
 *   else the host is running, so it still compares two builds on a busy host.
 * `idempotency-keys` is the client's, not the server's: "on" sends an Idempotency-Key with every
 * write (the client's default), "off" sends none (issue 19: keyed throughput >= 0.8 of unkeyed).
 * `--against <ref>`: this build ("on") against the server of an earlier commit ("off"), built in
 * a worktree of its own under the system's temporary directory (this checkout's node_modules),
 * each on a database of its own (the URL's name, and that name with `_against`), the client
 * sending no Idempotency-Key to either, so that both do the same work (issue 11: a change of
 * structure must leave no figure worse beyond the run-to-run spread). `--this <ref>` runs an
 * earlier commit's server on the "on" side too, built the same way.
 * `metrics` measures a cost rather than a gain: "on" serves /metrics, counts every job and
 * times every request, and is scraped every 5 s as Prometheus would; "off" runs without them
 * (issue 13: the cost stays under 5 % of throughput).
 * `cheap-validation`: the OpenAPI validator composed into one layer with pre-resolved routes
 * (server/src/http/validator.ts, "on") against the library's own middleware() (issue 16 item 3).
 * `settle-on-poll` is the worker's (issue 16 item 1): "on" carries completions on the next poll
 * (`POST /v1/next`, the worker's default), "off" sends them on their own; it adds a phase,
 * complete each at concurrency 8 (no prefetch).
 * `processes`: `--processes 2` ("on", two server processes on one port) against one ("off")
 * (issue 16 item 4); server CPU then counts both processes.
 * Output: medians (min–max) on stdout, bench-results/ab-<optimisation>-<timestamp>.json and
 * bench-results/ab-<optimisation>-latest.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { buildCheckout } from './checkout.js';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { DEFAULT_DATABASE_URL, adminUrl, ensureDatabase, flushOwnStats, preload, readXacts, truncate, waitBackendsGone } from './db.js';
import { RELAY_APPLICATION_NAME, Relay } from './relay.js';
import { ServerProcess } from './server.js';
import { latencyStats, median } from './stats.js';

const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const against = flag('--against');
const thisRef = flag('--this');
const optimisation = against ? `against-${against}` : (flag('--optimisation') ?? '');
const settleOnPoll = optimisation === 'settle-on-poll';
const clientSide = optimisation === 'idempotency-keys' || settleOnPoll;
if (!against && !['hand-off', 'known-empty', 'coalescing', 'idempotency-keys', 'metrics', 'processes', 'cheap-validation', 'settle-on-poll'].includes(optimisation)) {
  console.error('usage: npm run bench:ab -- --optimisation hand-off|known-empty|coalescing|idempotency-keys|metrics|processes|cheap-validation|settle-on-poll | --against <git ref> [--runs N] [--quick]');
  process.exit(2);
}
const quick = args.includes('--quick');
const runs = Number(flag('--runs') ?? (quick ? 1 : 3));
const latencySeconds = quick ? 2 : 10;
const rate = 200;
const jobs = quick ? 1_000 : 10_000;
const only = flag('--only');
if (only !== undefined && only !== 'latency') {
  console.error('--only takes latency');
  process.exit(2);
}

const url = process.env.BENCH_DATABASE_URL ?? DEFAULT_DATABASE_URL;
const admin = new pg.Client(adminUrl(url));
await admin.connect();

interface Side {
  url: string;
  dbName: string;
  db: pg.Client;
  root: string | undefined;
}

async function side(sideUrl: string, root: string | undefined): Promise<Side> {
  await ensureDatabase(sideUrl);
  const db = new pg.Client(sideUrl);
  await db.connect();
  // A server's start migrates the database: the phases below empty its tables first.
  await (await ServerProcess.start({ databaseUrl: sideUrl, maxConnections: 2, root })).stop();
  return { url: sideUrl, dbName: new URL(sideUrl).pathname.slice(1), db, root };
}

const againstUrl = new URL(url);
againstUrl.pathname = `${againstUrl.pathname}_against`;
const onSide = await side(url, thisRef ? buildCheckout(thisRef) : undefined);
const offSide = against ? await side(againstUrl.toString(), buildCheckout(against)) : onSide;

type Variant = 'on' | 'off';
interface Sample {
  p50: number;
  p99: number;
  statementsPerJob: number;
  requestsPerJob: number;
  completionRequestsPerJob: number;
  enqueueCpuMsPerJob: number;
  completionCpuMsPerJob: number;
  enqueuePerSecond: number;
  completePerSecond: number;
  /** settle-on-poll only (else NaN): complete each at concurrency 8. */
  completionC8RequestsPerJob: number;
  completeC8PerSecond: number;
}
const samples: Record<Variant, Sample[]> = { on: [], off: [] };

async function measure(variant: Variant): Promise<Sample> {
  const env: Record<string, string> =
    optimisation === 'processes' ? { RELAY_PROCESSES: variant === 'on' ? '2' : '1' }
    : variant === 'off' && !clientSide && !against ? { RELAY_BENCH_DISABLE: optimisation }
    : {};
  const relayOptions = {
    idempotencyKeys: against ? false : !(optimisation === 'idempotency-keys' && variant === 'off'),
    ...(settleOnPoll ? { settleOnPoll: variant === 'on' } : {}),
  };
  const { db, dbName, url: databaseUrl, root } = variant === 'on' ? onSide : offSide;
  /** A phase on a fresh server; xacts: the transactions the server ran meanwhile (read once its backends are gone). */
  const run = async <T>(phase: (relay: Relay) => Promise<T>, prepare?: () => Promise<void>): Promise<{ result: T; xacts: number; requests: number; cpuSeconds: number }> => {
    await truncate(db);
    await prepare?.();
    await flushOwnStats(db);
    const before = await readXacts(admin, dbName);
    const server = await ServerProcess.start({ databaseUrl, maxConnections: 10, env, root });
    // With metrics on, a scraper reads them as Prometheus would, so that their cost is counted.
    const scraper = optimisation === 'metrics' && variant === 'on'
      ? setInterval(() => void fetch(`${server.url}/metrics`).then((r) => r.text()).catch(() => undefined), 5_000)
      : undefined;
    let result: T;
    let cpuSeconds = 0;
    const relay = new Relay(server.url, relayOptions);
    try {
      const cpuBefore = server.cpuSeconds();
      result = await phase(relay);
      cpuSeconds = server.cpuSeconds() - cpuBefore;
    } finally {
      clearInterval(scraper);
      await server.stop();
      await waitBackendsGone(admin, dbName, RELAY_APPLICATION_NAME);
    }
    return { result, xacts: (await readXacts(admin, dbName)) - before, requests: relay.requests, cpuSeconds };
  };
  const latency = await run((relay) => relay.latency('ab', rate, latencySeconds, { concurrency: 8 }));
  const stats = latencyStats(latency.result.samples);
  const skipped = { result: { jobs: 1, seconds: NaN }, xacts: NaN, requests: NaN, cpuSeconds: NaN };
  const enqueue = only ? skipped : await run((relay) => relay.enqueueSingle('ab', jobs, 8));
  const completion = only
    ? skipped
    : await run(
        (relay) => relay.process('ab', jobs, { concurrency: 50, prefetch: 50, completionWindowMs: 0 }),
        () => preload(db, 'ab', jobs),
      );
  const c8 = settleOnPoll && !only
    ? await run((relay) => relay.process('ab', jobs, { concurrency: 8, completionWindowMs: 0 }), () => preload(db, 'ab', jobs))
    : undefined;
  return {
    completionC8RequestsPerJob: c8 ? c8.requests / c8.result.jobs : NaN,
    completeC8PerSecond: c8 ? c8.result.jobs / c8.result.seconds : NaN,
    p50: stats.p50,
    p99: stats.p99,
    statementsPerJob: latency.xacts / latency.result.jobs,
    requestsPerJob: latency.requests / latency.result.jobs,
    completionRequestsPerJob: completion.requests / completion.result.jobs,
    enqueueCpuMsPerJob: (enqueue.cpuSeconds * 1000) / enqueue.result.jobs,
    completionCpuMsPerJob: (completion.cpuSeconds * 1000) / completion.result.jobs,
    enqueuePerSecond: enqueue.result.jobs / enqueue.result.seconds,
    completePerSecond: completion.result.jobs / completion.result.seconds,
  };
}

for (let i = 0; i < runs; i++) {
  const order: Variant[] = i % 2 === 0 ? ['on', 'off'] : ['off', 'on'];
  for (const variant of order) {
    const s = await measure(variant);
    samples[variant].push(s);
    console.log(`run ${i + 1} ${optimisation} ${variant}: p50 ${s.p50.toFixed(2)} p99 ${s.p99.toFixed(2)} ms, ${s.statementsPerJob.toFixed(2)} statements/job, ${s.requestsPerJob.toFixed(2)} requests/job, ${s.completionRequestsPerJob.toFixed(2)} requests/job c50, enqueue ${s.enqueuePerSecond.toFixed(0)}/s, complete c50 ${s.completePerSecond.toFixed(0)}/s, server CPU ${s.enqueueCpuMsPerJob.toFixed(3)} / ${s.completionCpuMsPerJob.toFixed(3)} ms per job${settleOnPoll ? `, c8 ${s.completionC8RequestsPerJob.toFixed(2)} requests/job ${s.completeC8PerSecond.toFixed(0)}/s` : ''}`);
  }
}
await onSide.db.end();
if (offSide !== onSide) await offSide.db.end();
await admin.end();

const keys = ['p50', 'p99', 'statementsPerJob', 'requestsPerJob', 'completionRequestsPerJob', 'enqueuePerSecond', 'completePerSecond', 'enqueueCpuMsPerJob', 'completionCpuMsPerJob', 'completionC8RequestsPerJob', 'completeC8PerSecond'] as const;
const summary = Object.fromEntries(
  (['on', 'off'] as const).map((v) => [
    v,
    Object.fromEntries(keys.map((k) => {
      const values = samples[v].map((s) => s[k]).sort((a, b) => a - b);
      return [k, { median: median(values), min: values[0], max: values.at(-1) }];
    })),
  ]),
) as Record<Variant, Record<(typeof keys)[number], { median: number; min: number; max: number }>>;

const commit = execFileSync('git', ['rev-parse', '--short', thisRef ?? 'HEAD'], { encoding: 'utf8' }).trim();
const when = new Date().toISOString();
const fmt = (f: { median: number; min: number; max: number }, digits: number) => `${f.median.toFixed(digits)} (${f.min.toFixed(digits)}–${f.max.toFixed(digits)})`;
const rows: Array<[string, (typeof keys)[number], number]> = [
  ['latency p50, ms', 'p50', 2],
  ['latency p99, ms', 'p99', 2],
  ['statements per job (latency phase)', 'statementsPerJob', 2],
  ['HTTP requests per job (latency phase)', 'requestsPerJob', 2],
  ['HTTP requests per job (complete each, c50)', 'completionRequestsPerJob', 2],
  ['enqueue single, 8 producers, jobs/s', 'enqueuePerSecond', 0],
  ['complete each, c50, jobs/s', 'completePerSecond', 0],
  // CPU time per job is what the build costs whatever else the host runs: throughput and
  // latency also measure how much of the host the bench got.
  ['server CPU ms per job, enqueue single', 'enqueueCpuMsPerJob', 3],
  ['server CPU ms per job, complete each c50 (with its next)', 'completionCpuMsPerJob', 3],
  ...(settleOnPoll
    ? ([
        ['HTTP requests per job (complete each, c8)', 'completionC8RequestsPerJob', 2],
        ['complete each, c8, jobs/s', 'completeC8PerSecond', 0],
      ] as Array<[string, (typeof keys)[number], number]>)
    : []),
];
const md = [
  `# A/B: ${optimisation} (${when}, commit ${commit}, ${runs} run(s), medians (min–max))`,
  '',
  against ? `| figure | this build (${commit}) | ${against} | ratio this/${against} |` : `| figure | with ${optimisation} | without | ratio with/without |`,
  '|---|---|---|---|',
  ...rows.map(([label, k, d]) => `| ${label} | ${fmt(summary.on[k], d)} | ${fmt(summary.off[k], d)} | ${(summary.on[k].median / summary.off[k].median).toFixed(2)} |`),
  '',
].join('\n');
const dir = fileURLToPath(new URL('../../bench-results/', import.meta.url));
mkdirSync(dir, { recursive: true });
writeFileSync(`${dir}ab-${optimisation}-${when.replace(/[:.]/g, '-')}.json`, JSON.stringify({ optimisation, when, commit, runs, samples, summary }, null, 2));
writeFileSync(`${dir}ab-${optimisation}-latest.md`, md);
console.log(`\n${md}`);
