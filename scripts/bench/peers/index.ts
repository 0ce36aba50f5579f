/**
 * `npm run bench -- --peers`: relay-ts, pg-boss and graphile-worker against the raw-SQL
 * baseline, in one run, on the same PostgreSQL: the same workload shapes (enqueue single from
 * 8 producers, enqueue batches of 1 000, processing with per-job and batched completion at a
 * couple of concurrencies, latency enqueue → handler at 200 jobs/s), the four systems
 * interleaved phase by phase in an order that rotates with each run. Each figure is reported
 * as a ratio to the baseline of the same run (the median of the runs' ratios), beside the
 * issue's target for relay-ts. Every phase checks that no job was lost or run twice.
 *
 * Each peer has a database of its own beside the bench database (<db>_pgboss,
 * <db>_graphile; created when missing), emptied between phases like relay's tables. Their
 * settings are described in pgboss.ts and graphile.ts; relay's worker runs with its default
 * prefetch ('auto'; BENCH_PREFETCH_PER_SLOT as in the main bench). Options: --quick (small numbers, one
 * run), --runs N, --jobs N, --phase-seconds S, --latency-seconds S, as for the main bench.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Baseline } from '../baseline.js';
import { DEFAULT_DATABASE_URL, countJobs, ensureDatabase, preload, truncate } from '../db.js';
import type { LatencyRun, ProcessRun, TimedRun } from '../phases.js';
import { Relay } from '../relay.js';
import { ServerProcess } from '../server.js';
import { latencyStats, median, type LatencyStats } from '../stats.js';
import { GraphilePeer } from './graphile.js';
import { PgBossPeer } from './pgboss.js';
import { waitFor } from './wait.js';

const SYSTEMS = ['baseline', 'relay', 'pgboss', 'graphile'] as const;
type System = (typeof SYSTEMS)[number];
const NAMES: Record<System, string> = { baseline: 'raw SQL baseline', relay: 'relay-ts', pgboss: 'pg-boss', graphile: 'graphile-worker' };
const QUEUE = 'bench';
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

interface Variant {
  system: System;
  /** The figure it counts towards. */
  key: FigureKey;
  /** What distinguishes it from the system's other variants of the figure (e.g. the concurrency). */
  setting: string;
  preloaded: boolean;
  timed?: boolean;
  run(n: number): Promise<TimedRun>;
}

type FigureKey = 'enqueue_single' | 'enqueue_batch' | 'process_each' | 'process_batched' | 'latency';

interface Measurement {
  run: number;
  jobs: number;
  seconds: number;
  throughput: number;
  latency?: LatencyStats;
}

interface Ctx {
  config: ReturnType<typeof parse>;
  ctl: pg.Client;
  baseline: Baseline;
  relay: Relay;
  pgboss: PgBossPeer;
  graphile: GraphilePeer;
  failures: string[];
  /** system → key → setting → measurements */
  results: Record<System, Partial<Record<FigureKey, Record<string, Measurement[]>>>>;
  jobsFor: Map<string, number>;
}

function parse(args: string[]) {
  const quick = args.includes('--quick');
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const config = {
    quick,
    runs: Number(flag('--runs') ?? (quick ? 1 : 3)),
    jobs: Number(flag('--jobs') ?? (quick ? 500 : 20_000)),
    fixedJobs: quick || flag('--jobs') !== undefined,
    phaseSeconds: Number(flag('--phase-seconds') ?? 4),
    minJobs: 1_000,
    warmupJobs: quick ? 0 : 1_000,
    producers: 8,
    batch: 1_000,
    baselineConsumers: 8,
    baselineClaim: 50,
    concurrencies: [8, 50],
    latencyRate: 200,
    latencySeconds: Number(flag('--latency-seconds') ?? (quick ? 1 : 10)),
    serverConnections: Number(process.env.BENCH_SERVER_CONNECTIONS ?? 10),
    completionWindowMs: Number(process.env.BENCH_COMPLETION_WINDOW_MS ?? 5),
    /** relay's worker prefetch, as in the main bench: its default ('auto'), or BENCH_PREFETCH_PER_SLOT × concurrency. */
    prefetchPerSlot: (process.env.BENCH_PREFETCH_PER_SLOT ?? 'auto') === 'auto' ? ('auto' as const) : Number(process.env.BENCH_PREFETCH_PER_SLOT),
  };
  for (const [name, v] of Object.entries({ runs: config.runs, jobs: config.jobs, phaseSeconds: config.phaseSeconds, latencySeconds: config.latencySeconds })) {
    if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number`);
  }
  return config;
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** The four systems' variants of each figure, in phase order. */
function phases(c: Ctx): Variant[][] {
  const { config: k, baseline: b, relay: r, pgboss: p, graphile: g } = c;
  const each: Variant[] = [
    { system: 'baseline', key: 'process_each', setting: `${k.baselineConsumers} consumers claiming ${k.baselineClaim}`, preloaded: true, run: (n) => b.process(QUEUE, n, { consumers: k.baselineConsumers, claim: k.baselineClaim, batched: false }) },
  ];
  const batched: Variant[] = [
    { system: 'baseline', key: 'process_batched', setting: `${k.baselineConsumers} consumers claiming ${k.baselineClaim}`, preloaded: true, run: (n) => b.process(QUEUE, n, { consumers: k.baselineConsumers, claim: k.baselineClaim, batched: true }) },
  ];
  const prefetch = (cc: number): number | 'auto' => (k.prefetchPerSlot === 'auto' ? 'auto' : Math.round(cc * k.prefetchPerSlot));
  for (const cc of k.concurrencies) {
    each.push(
      { system: 'relay', key: 'process_each', setting: `concurrency ${cc}, prefetch ${prefetch(cc)}`, preloaded: true, run: (n) => r.process(QUEUE, n, { concurrency: cc, prefetch: prefetch(cc), completionWindowMs: 0 }) },
      { system: 'pgboss', key: 'process_each', setting: `localConcurrency ${cc}, batchSize 1`, preloaded: true, run: (n) => p.process(QUEUE, n, { loops: cc, batchSize: 1 }) },
      { system: 'graphile', key: 'process_each', setting: `concurrentJobs ${cc}, localQueue ${cc}`, preloaded: true, run: (n) => g.process(n, { concurrency: cc, localQueueSize: cc, completeJobBatchDelay: -1 }) },
    );
    batched.push(
      { system: 'relay', key: 'process_batched', setting: `concurrency ${cc}, prefetch ${prefetch(cc)}, window ${k.completionWindowMs} ms`, preloaded: true, run: (n) => r.process(QUEUE, n, { concurrency: cc, prefetch: prefetch(cc), completionWindowMs: k.completionWindowMs }) },
      { system: 'graphile', key: 'process_batched', setting: `concurrentJobs ${cc}, localQueue ${cc}, completeJobBatchDelay ${k.completionWindowMs}`, preloaded: true, run: (n) => g.process(n, { concurrency: cc, localQueueSize: cc, completeJobBatchDelay: k.completionWindowMs }) },
    );
  }
  // pg-boss batches by fetch: batchSize jobs per handler call, one completion statement per batch.
  for (const loops of [1, k.baselineConsumers]) {
    batched.push({ system: 'pgboss', key: 'process_batched', setting: `localConcurrency ${loops}, batchSize ${k.baselineClaim}`, preloaded: true, run: (n) => p.process(QUEUE, n, { loops, batchSize: k.baselineClaim }) });
  }
  const producers = `${k.producers} producers`;
  const perCall = `${k.batch} per call`;
  return [
    [
      { system: 'baseline', key: 'enqueue_single', setting: producers, preloaded: false, run: (n) => b.enqueueSingle(QUEUE, n, k.producers) },
      { system: 'relay', key: 'enqueue_single', setting: producers, preloaded: false, run: (n) => r.enqueueSingle(QUEUE, n, k.producers) },
      { system: 'pgboss', key: 'enqueue_single', setting: `${producers}, send`, preloaded: false, run: (n) => p.enqueueSingle(QUEUE, n, k.producers) },
      { system: 'graphile', key: 'enqueue_single', setting: `${producers}, addJob`, preloaded: false, run: (n) => g.enqueueSingle(n, k.producers) },
    ],
    [
      { system: 'baseline', key: 'enqueue_batch', setting: perCall, preloaded: false, run: (n) => b.enqueueBatch(QUEUE, n, k.batch) },
      { system: 'relay', key: 'enqueue_batch', setting: perCall, preloaded: false, run: (n) => r.enqueueBatch(QUEUE, n, k.batch) },
      { system: 'pgboss', key: 'enqueue_batch', setting: `${perCall}, insert`, preloaded: false, run: (n) => p.enqueueBatch(QUEUE, n, k.batch) },
      { system: 'graphile', key: 'enqueue_batch', setting: `${perCall}, addJobs`, preloaded: false, run: (n) => g.enqueueBatch(n, k.batch) },
    ],
    each,
    batched,
    [
      { system: 'baseline', key: 'latency', setting: 'LISTEN/NOTIFY consumer', preloaded: false, timed: true, run: () => b.latency(QUEUE, k.latencyRate, k.latencySeconds) },
      { system: 'relay', key: 'latency', setting: 'worker concurrency 8, long poll', preloaded: false, timed: true, run: () => r.latency(QUEUE, k.latencyRate, k.latencySeconds, { concurrency: 8 }) },
      { system: 'pgboss', key: 'latency', setting: 'localConcurrency 2, batchSize 4, LISTEN/NOTIFY, polling 0.5 s', preloaded: false, timed: true, run: () => p.latency(QUEUE, k.latencyRate, k.latencySeconds, { loops: 2, batchSize: 4 }) },
      { system: 'graphile', key: 'latency', setting: 'concurrentJobs 8, LISTEN/NOTIFY', preloaded: false, timed: true, run: () => g.latency(k.latencyRate, k.latencySeconds, 8) },
    ],
  ];
}

async function empty(c: Ctx, system: System): Promise<void> {
  if (system === 'pgboss') await c.pgboss.truncate();
  else if (system === 'graphile') await c.graphile.truncate();
  else await truncate(c.ctl);
}

async function load(c: Ctx, system: System, n: number): Promise<void> {
  if (system === 'pgboss') await c.pgboss.preload(QUEUE, n);
  else if (system === 'graphile') await c.graphile.preload(n);
  else await preload(c.ctl, QUEUE, n);
}

/** Fails the bench (at the end) when a phase lost a job, ran one twice, or left one behind. */
async function check(c: Ctx, v: Variant, label: string, r: TimedRun): Promise<void> {
  const tally = (r as ProcessRun).tally;
  if (tally) {
    const problem = tally.problem();
    if (problem) c.failures.push(`${label}: ${problem}`);
  }
  const enqueue = v.key.startsWith('enqueue');
  try {
    if (v.system === 'pgboss') {
      // pg-boss keeps completed jobs (state 'completed') until its retention removes them.
      const { open, all } = await c.pgboss.count(QUEUE);
      if (enqueue ? all !== r.jobs : open !== 0 || all !== r.jobs) c.failures.push(`${label}: pg-boss holds ${all} jobs of ${r.jobs}, ${open} not completed`);
    } else if (v.system === 'graphile') {
      // graphile-worker deletes a job once complete; a batched completion may land just after the event.
      const want = enqueue ? r.jobs : 0;
      await waitFor(async () => (await c.graphile.count()) === want, 5_000).catch(() => undefined);
      const left = await c.graphile.count();
      if (left !== want) c.failures.push(`${label}: graphile-worker holds ${left} jobs, ${want} expected`);
    } else {
      const { jobs, failed } = await countJobs(c.ctl);
      const want = enqueue ? r.jobs : 0;
      if (jobs !== want || failed !== 0) c.failures.push(`${label}: ${jobs} jobs in relay_jobs (${want} expected), ${failed} in relay_failed_jobs`);
    }
  } catch (err) {
    c.failures.push(`${label}: check failed: ${String(err)}`);
  }
}

const id = (v: Variant) => `${v.system}:${v.key}:${v.setting}`;

/** Unrecorded jobs through every variant (JIT, pools, caches); in run 1 it sizes each variant to about phaseSeconds. */
async function warmUp(c: Ctx, run: number): Promise<void> {
  const n = c.config.warmupJobs;
  for (const phase of phases(c)) {
    for (const v of phase) {
      if (v.timed) continue;
      if (n === 0) {
        if (run === 1) c.jobsFor.set(id(v), c.config.jobs);
        continue;
      }
      await empty(c, v.system);
      if (v.preloaded) await load(c, v.system, n);
      const r = await v.run(n);
      if (run === 1) {
        const sized = Math.round(((n / r.seconds) * c.config.phaseSeconds) / 1000) * 1000;
        c.jobsFor.set(id(v), c.config.fixedJobs ? c.config.jobs : Math.min(c.config.jobs, Math.max(c.config.minJobs, sized)));
      }
      await empty(c, v.system);
    }
  }
}

function describe(m: Measurement): string {
  const parts = [`${Math.round(m.throughput)} jobs/s (${m.jobs} in ${m.seconds.toFixed(2)} s)`];
  if (m.latency) parts.push(`p50 ${m.latency.p50.toFixed(2)} p99 ${m.latency.p99.toFixed(2)} max ${m.latency.max.toFixed(2)} ms`);
  return parts.join(', ');
}

async function oneRun(c: Ctx, run: number): Promise<void> {
  const shift = (run - 1) % SYSTEMS.length;
  const order = [...SYSTEMS.slice(shift), ...SYSTEMS.slice(0, shift)];
  log(`run ${run}/${c.config.runs}: order ${order.join(', ')}; warming up`);
  await warmUp(c, run);
  for (const phase of phases(c)) {
    for (const system of order) {
      for (const v of phase.filter((x) => x.system === system)) {
        await empty(c, system);
        const n = c.jobsFor.get(id(v)) ?? c.config.jobs;
        if (v.preloaded) await load(c, system, n);
        const label = `run ${run} ${NAMES[system]} ${v.key} (${v.setting})`;
        let r: TimedRun;
        try {
          r = await v.run(n);
        } catch (err) {
          c.failures.push(`${label}: ${err instanceof Error ? err.message : String(err)}`);
          log(`  ${system.padEnd(8)} ${v.key} (${v.setting}): FAILED ${String(err)}`);
          continue;
        }
        await check(c, v, label, r);
        const samples = (r as LatencyRun).samples;
        const m: Measurement = { run, jobs: r.jobs, seconds: r.seconds, throughput: r.jobs / r.seconds, latency: samples ? latencyStats(samples) : undefined };
        ((c.results[system][v.key] ??= {})[v.setting] ??= []).push(m);
        log(`  ${system.padEnd(8)} ${v.key} (${v.setting}): ${describe(m)}`);
      }
    }
  }
  for (const s of SYSTEMS) await empty(c, s);
}

// --- The figures ------------------------------------------------------------------------------

interface Cell {
  /** The setting reported (the best of the system's variants). */
  setting: string;
  /** Median over the runs. */
  value: number;
  /** Median over the runs of value / the baseline's value of the same run. */
  ratio?: number;
  runs: number[];
  ratios: number[];
}

interface PeerFigure {
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  target: string;
  cells: Partial<Record<System, Cell>>;
  /** Whether relay-ts meets the target (undefined: not measured, or no target). */
  met?: boolean;
}

function cellOf(c: Ctx, system: System, key: FigureKey, pick: (m: Measurement) => number, better: 'higher' | 'lower'): Cell | undefined {
  const variants = c.results[system][key];
  if (!variants) return undefined;
  const base = Object.values(c.results.baseline[key] ?? {})[0] ?? [];
  let best: Cell | undefined;
  for (const [setting, ms] of Object.entries(variants)) {
    const runs = ms.map(pick);
    const value = median([...runs].sort((a, b) => a - b));
    const ratios = ms.flatMap((m) => {
      const bm = base.find((x) => x.run === m.run);
      return bm ? [pick(m) / pick(bm)] : [];
    });
    const cell: Cell = { setting, value, runs, ratios, ratio: ratios.length ? median([...ratios].sort((a, b) => a - b)) : undefined };
    if (!best || (better === 'higher' ? value > best.value : value < best.value)) best = cell;
  }
  return best;
}

function figures(c: Ctx): PeerFigure[] {
  const tput = (m: Measurement) => m.throughput;
  const p = (q: 'p50' | 'p99') => (m: Measurement) => m.latency?.[q] ?? NaN;
  const specs: { label: string; unit: string; better: 'higher' | 'lower'; key: FigureKey; pick: (m: Measurement) => number; target: string; min?: number; max?: number; beat?: System }[] = [
    { label: `enqueue single, ${c.config.producers} producers`, unit: 'jobs/s', better: 'higher', key: 'enqueue_single', pick: tput, target: '≥ 0.5', min: 0.5 },
    { label: `enqueue batch, ${c.config.batch} per request`, unit: 'jobs/s', better: 'higher', key: 'enqueue_batch', pick: tput, target: '≥ 0.8', min: 0.8 },
    { label: 'complete each (worker, best concurrency)', unit: 'jobs/s', better: 'higher', key: 'process_each', pick: tput, target: "≥ 0.9, and above graphile-worker's", min: 0.9, beat: 'graphile' },
    { label: 'batched completion (worker, best concurrency)', unit: 'jobs/s', better: 'higher', key: 'process_batched', pick: tput, target: '≥ 0.8', min: 0.8 },
    { label: `latency enqueue → handler at ${c.config.latencyRate} jobs/s, p50`, unit: 'ms', better: 'lower', key: 'latency', pick: p('p50'), target: '—' },
    { label: `latency enqueue → handler at ${c.config.latencyRate} jobs/s, p99`, unit: 'ms', better: 'lower', key: 'latency', pick: p('p99'), target: "≤ 1.3× the baseline's, and below graphile-worker's", max: 1.3, beat: 'graphile' },
  ];
  return specs.map((s) => {
    const cells: Partial<Record<System, Cell>> = {};
    for (const system of SYSTEMS) {
      const cell = cellOf(c, system, s.key, s.pick, s.better);
      if (cell) cells[system] = cell;
    }
    const relay = cells.relay?.ratio;
    let met: boolean | undefined;
    if (relay !== undefined && (s.min !== undefined || s.max !== undefined)) {
      met = s.min !== undefined ? relay >= s.min : relay <= s.max!;
      if (s.beat) {
        const other = cells[s.beat]?.ratio;
        met = met && other !== undefined && (s.better === 'higher' ? relay > other : relay < other);
      }
    }
    return { label: s.label, unit: s.unit, better: s.better, target: s.target, cells, met };
  });
}

function num(v: number, unit: string): string {
  if (!Number.isFinite(v)) return 'n/a';
  if (unit === 'jobs/s') return Math.round(v).toLocaleString('en-US').replaceAll(',', ' ');
  return v.toFixed(Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2);
}

function table(fs: PeerFigure[]): string {
  const lines = [
    '| figure | unit | raw SQL baseline | relay-ts | ratio | pg-boss | ratio | graphile-worker | ratio | target (relay-ts) | met |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  const ratio = (cell?: Cell) => (cell?.ratio === undefined || !Number.isFinite(cell.ratio) ? '—' : `${cell.ratio.toFixed(2)}×`);
  const abs = (f: PeerFigure, cell?: Cell) => (cell ? num(cell.value, f.unit) : '—');
  for (const f of fs) {
    const met = f.met === undefined ? '—' : f.met ? 'yes' : 'no';
    lines.push(
      `| ${f.label} | ${f.unit} | ${abs(f, f.cells.baseline)} | ${abs(f, f.cells.relay)} | ${ratio(f.cells.relay)} | ${abs(f, f.cells.pgboss)} | ${ratio(f.cells.pgboss)} | ${abs(f, f.cells.graphile)} | ${ratio(f.cells.graphile)} | ${f.target} | ${met} |`,
    );
  }
  return lines.join('\n');
}

/** Every variant measured: median (min – max) and the settings. */
function detail(c: Ctx): string {
  const lines = ['| system | figure | setting | jobs | median | min – max |', '|---|---|---|---|---|---|'];
  const keys: FigureKey[] = ['enqueue_single', 'enqueue_batch', 'process_each', 'process_batched', 'latency'];
  for (const key of keys) {
    for (const system of SYSTEMS) {
      for (const [setting, ms] of Object.entries(c.results[system][key] ?? {})) {
        const values = (key === 'latency' ? ms.map((m) => m.latency?.p99 ?? NaN) : ms.map((m) => m.throughput)).sort((a, b) => a - b);
        const unit = key === 'latency' ? 'ms' : 'jobs/s';
        const what = key === 'latency' ? `p99 ${num(median(values), unit)} ms (p50 ${num(median(ms.map((m) => m.latency?.p50 ?? NaN).sort((a, b) => a - b)), unit)})` : `${num(median(values), unit)} jobs/s`;
        lines.push(`| ${NAMES[system]} | ${key} | ${setting} | ${ms[0]?.jobs ?? ''} | ${what} | ${num(values[0]!, unit)} – ${num(values[values.length - 1]!, unit)} |`);
      }
    }
  }
  return lines.join('\n');
}

function versionOf(pkg: string): string {
  try {
    const require = createRequire(import.meta.url);
    // Their exports maps hide package.json: find it from the entry point.
    let dir = require.resolve(pkg);
    for (let i = 0; i < 5; i++) {
      dir = dir.slice(0, dir.lastIndexOf('/'));
      try {
        const json = JSON.parse(readFileSync(`${dir}/package.json`, 'utf8')) as { name?: string; version?: string };
        if (json.name === pkg) return json.version ?? 'unknown';
      } catch {
        // not here, one level up
      }
    }
  } catch {
    // fall through
  }
  return 'unknown';
}

function commit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

const loadAverage = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

export async function runPeers(args: string[]): Promise<void> {
  const config = parse(args);
  const url = process.env.BENCH_DATABASE_URL || DEFAULT_DATABASE_URL;
  const dbName = decodeURIComponent(new URL(url).pathname.slice(1));
  const sibling = (suffix: string) => {
    const u = new URL(url);
    u.pathname = `/${encodeURIComponent(dbName + suffix)}`;
    return u.toString();
  };
  const started = new Date();
  const t0 = performance.now();
  const loadAtStart = loadAverage();
  await ensureDatabase(url);
  const ctl = new pg.Client({ connectionString: url, application_name: 'relay-bench-control' });
  await ctl.connect();
  const pgVersion = (await ctl.query<{ v: string }>('SELECT version() AS v')).rows[0]!.v.split(' on ')[0]!;
  const syncCommit = (await ctl.query<{ s: string }>("SELECT current_setting('synchronous_commit') AS s")).rows[0]!.s;
  const pgboss = new PgBossPeer(sibling('_pgboss'));
  const graphile = new GraphilePeer(sibling('_graphile'));
  await pgboss.open();
  await graphile.open();
  const versions = { 'pg-boss': versionOf('pg-boss'), 'graphile-worker': versionOf('graphile-worker') };
  log(
    `relay-ts bench against its peers${config.quick ? ' (quick)' : ''}: ${os.availableParallelism?.() ?? os.cpus().length} CPUs, ${pgVersion}, Node ${process.version}, ` +
      `load average ${loadAtStart}; databases ${dbName}, ${dbName}_pgboss, ${dbName}_graphile; pg-boss ${versions['pg-boss']}, graphile-worker ${versions['graphile-worker']}; ${config.runs} run(s)`,
  );
  const c: Ctx = {
    config,
    ctl,
    baseline: undefined as unknown as Baseline,
    relay: undefined as unknown as Relay,
    pgboss,
    graphile,
    failures: [],
    results: { baseline: {}, relay: {}, pgboss: {}, graphile: {} },
    jobsFor: new Map(),
  };
  try {
    for (let run = 1; run <= config.runs; run++) {
      // A fresh relay server and baseline pool per run, as in the main bench.
      const server = await ServerProcess.start({ databaseUrl: url, maxConnections: config.serverConnections });
      c.baseline = new Baseline(url);
      c.relay = new Relay(server.url);
      try {
        await oneRun(c, run);
      } finally {
        await c.baseline.close();
        await server.stop();
      }
    }
  } finally {
    await ctl.end();
    await pgboss.close();
    await graphile.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  const loadAtEnd = loadAverage();
  const fs = figures(c);
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const head =
    `${new Date().toISOString()} · commit ${commit()} · ${os.availableParallelism?.() ?? os.cpus().length} CPUs, ${os.cpus()[0]?.model ?? 'unknown'} · ${pgVersion} (synchronous_commit ${syncCommit}) · Node ${process.version} · ` +
    `pg-boss ${versions['pg-boss']}, graphile-worker ${versions['graphile-worker']} · load average ${loadAtStart} at start, ${loadAtEnd} at end · ${seconds.toFixed(0)} s`;
  const md = [
    `# relay-ts and its peers against the raw-SQL baseline${config.quick ? ' (--quick: a smoke test, not a measurement)' : ''}`,
    '',
    head,
    '',
    `${config.runs === 1 ? '1 run' : `Medians of ${config.runs} runs`}, the four systems interleaved per phase (order rotating per run). ` +
      'Ratios: each run\'s figure over the baseline\'s of the same run, the median of those (throughput: higher is better; latency: lower). ' +
      'Processing figures: each system\'s best setting (below). Each peer on a database of its own on the same PostgreSQL.',
    '',
    table(fs),
    '',
    '## Every variant',
    '',
    detail(c),
    '',
    ...(c.failures.length ? ['## FAILURES', '', ...c.failures.map((x) => `- ${x}`), ''] : []),
  ].join('\n');
  const json = { started: started.toISOString(), seconds, config, database: dbName, versions, postgres: pgVersion, synchronousCommit: syncCommit, loadAverage: { start: loadAtStart, end: loadAtEnd }, commit: commit(), figures: fs, measurements: c.results, failures: c.failures };
  mkdirSync(`${ROOT}bench-results`, { recursive: true });
  writeFileSync(`${ROOT}bench-results/peers-${stamp}.json`, `${JSON.stringify(json, null, 2)}\n`);
  writeFileSync(`${ROOT}bench-results/peers-latest.md`, md);
  process.stdout.write(md);
  log(`\nwrote bench-results/peers-${stamp}.json and bench-results/peers-latest.md (${seconds.toFixed(0)} s)`);
  if (c.failures.length > 0) {
    log(`\nFAILED:\n${c.failures.map((x) => `  - ${x}`).join('\n')}`);
    process.exitCode = 1;
  }
}
