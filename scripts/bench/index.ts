/**
 * npm run bench [-- --quick | --profile | --peers] [--runs N] [--jobs N] [--phase-seconds S]
 *               [--latency-seconds S] [--synchronous-commit on|off]
 *
 * relay-ts against a raw-SQL baseline of the same job lifecycle on the same PostgreSQL
 * database, in one run: enqueue (single, batch), processing throughput (per-job and batched
 * completion), latency from enqueue to processing start, the server's CPU per 1 000 jobs,
 * SQL statements per job and the share of HOT updates. Every figure is the median of the runs
 * (3 by default; baseline and relay interleaved), with min, max and the ratio to the baseline.
 *
 * The database: BENCH_DATABASE_URL, else postgres://root@127.0.0.1:5432/relay_bench (created
 * when missing). Its relay tables are emptied between phases: do not point it at real data.
 * Output: bench-results/bench-<timestamp>.json and bench-results/latest.md. Before the runs,
 * a loopback round trip between two idle processes is measured (probe.ts) and reported with
 * the machine: the floor under the latency figures, which moves with the host.
 *
 * --peers: instead of the bench above, relay-ts, pg-boss and graphile-worker (the bench
 * workspace's dev dependencies) against the baseline with the same workload shapes, the four
 * interleaved per phase, each figure as a ratio to the baseline of the same run beside the
 * targets for relay-ts (peers/index.ts; bench-results/peers-<timestamp>.json and
 * peers-latest.md). Takes --quick, --runs, --jobs, --phase-seconds, --latency-seconds.
 * --quick: small numbers and one run, to check that the bench works (CI). Exits non-zero
 * when a phase fails or a job is lost or processed twice (in any mode).
 * --profile: instead of the bench, runs the relay server under --cpu-prof through one
 * per-job-completion processing phase (5 000 jobs, or --jobs; worker concurrency 8, or
 * --concurrency) and prints where its CPU time
 * goes (bench-results/profile-latest.md). --against <ref>: profile an earlier commit's server.
 * --jobs N: exactly N jobs per throughput phase (default: up to 20 000, fewer when the
 * warm-up shows a phase would take over --phase-seconds, 5).
 * --synchronous-commit: ALTER DATABASE ... SET synchronous_commit for the run (reset after),
 * e.g. off to see what is left when commits do not wait for the WAL flush.
 * --load [N]: each processing phase runs twice per run, on the quiet host and beside N CPU
 * spinners (load.ts; default one per core), baseline and relay alike; the report adds each
 * figure's ratio to the baseline under load, and that ratio over the quiet one (issue 16:
 * relay-ts must not slow down under load far more than the baseline does).
 * Environment: BENCH_SERVER_CONNECTIONS (the server's pool, default 10),
 * BENCH_COMPLETION_WINDOW_MS (the worker's batched completion window, default 5),
 * BENCH_PREFETCH_PER_SLOT (the worker's prefetch as a multiple of its concurrency; default
 * auto, the worker's default: `prefetch: 'auto'`).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { APPLICATION_NAME as BASELINE_APP, Baseline } from './baseline.js';
import {
  DEFAULT_DATABASE_URL,
  adminUrl,
  countJobs,
  ensureDatabase,
  flushOwnStats,
  postgresCpuOf,
  preload,
  readTableCounters,
  readXacts,
  truncate,
  waitBackendsGone,
} from './db.js';
import type { LatencyRun, ProcessRun, TimedRun } from './phases.js';
import { loopbackRoundTrip, type RoundTrip } from './probe.js';
import { runProfile } from './profile.js';
import { RELAY_APPLICATION_NAME, Relay } from './relay.js';
import { figure, table, type Figure } from './report.js';
import { ServerProcess } from './server.js';
import { latencyStats, type LatencyStats } from './stats.js';
import { startLoad } from './load.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
function flag(name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}
const config = {
  quick,
  runs: Number(flag('--runs') ?? (quick ? 1 : 3)),
  /** Jobs per throughput phase, at the most (see phaseSeconds). */
  jobs: Number(flag('--jobs') ?? (quick ? 1_000 : 20_000)),
  /**
   * A throughput phase runs `jobs` jobs, or fewer when the warm-up of the first run shows it
   * would take longer than this (at least minJobs): the whole bench stays within minutes on a
   * slow machine. The figure is a rate either way; the table shows the job counts.
   */
  phaseSeconds: Number(flag('--phase-seconds') ?? 5),
  minJobs: 1_000,
  producers: 8,
  batch: 1_000,
  baselineConsumers: 8,
  baselineClaim: 50,
  concurrencies: [8, 50],
  latencyRate: 200,
  latencySeconds: Number(flag('--latency-seconds') ?? (quick ? 2 : 10)),
  /** Jobs of the phases that count SQL statements (a fresh server each), at the most. */
  sqlJobs: quick ? 500 : 3_000,
  /**
   * Jobs of the unrecorded warm-up of each variant in each run (JIT, connection pools,
   * caches); none with --quick. 300 left the relay server's hot paths still being optimized
   * by V8 during the first seconds of a phase: enqueue single measured ~25 % under its
   * steady rate.
   */
  warmupJobs: quick ? 0 : 2_000,
  serverConnections: Number(process.env.BENCH_SERVER_CONNECTIONS ?? 10),
  /** completionBatchWindowMs of the worker for "batched completion" (the worker's default is 5). */
  completionWindowMs: Number(process.env.BENCH_COMPLETION_WINDOW_MS ?? 5),
  /**
   * The worker's prefetch in the processing phases: 'auto' (the worker's default), or a
   * multiple of its concurrency (1 was the bench's setting before 'auto' existed).
   */
  prefetchPerSlot: (process.env.BENCH_PREFETCH_PER_SLOT ?? 'auto') === 'auto' ? ('auto' as const) : Number(process.env.BENCH_PREFETCH_PER_SLOT),
  /** ALTER DATABASE ... SET synchronous_commit for the run (e.g. off: no WAL flush wait per commit); unset: the server's. */
  synchronousCommit: flag('--synchronous-commit'),
  /** Spinners beside the loaded copies of the processing phases; 0: no loaded copies. */
  load: args.includes('--load') ? Number(/^\d+$/.test(flag('--load') ?? '') ? flag('--load') : os.availableParallelism()) : 0,
};
for (const [name, v] of Object.entries({ runs: config.runs, jobs: config.jobs, phaseSeconds: config.phaseSeconds, latencySeconds: config.latencySeconds })) {
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number`);
}
if (config.synchronousCommit !== undefined && !['on', 'off', 'local', 'remote_write', 'remote_apply'].includes(config.synchronousCommit)) {
  throw new Error('--synchronous-commit takes on, off, local, remote_write or remote_apply');
}
/** Job counts fixed by --jobs or --quick: no sizing from the warm-up. */
const fixedJobs = quick || flag('--jobs') !== undefined;

const QUEUE = 'bench';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const url = process.env.BENCH_DATABASE_URL || DEFAULT_DATABASE_URL;
const dbName = decodeURIComponent(new URL(url).pathname.slice(1));

type System = 'baseline' | 'relay';

interface Measurement {
  run: number;
  jobs: number;
  seconds: number;
  /** jobs per second */
  throughput: number;
  /** CPU seconds of the relay server process during the phase (relay phases only). */
  serverCpu?: number;
  /** CPU seconds of the PostgreSQL backends connected to the bench database (WAL writer etc. not included). */
  dbCpu: number;
  /** CPU seconds of this process (producers, consumers, worker runtime, client). */
  benchCpu: number;
  latency?: LatencyStats;
  /** SQL phases: transactions (= statements) per job, and relay_jobs update counters. */
  statementsPerJob?: number;
  tupUpd?: number;
  tupHotUpd?: number;
}

const results: Record<System, Record<string, Measurement[]>> = { baseline: {}, relay: {} };
const failures: string[] = [];

function record(system: System, key: string, m: Measurement): void {
  (results[system][key] ??= []).push(m);
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

let ctl: pg.Client;
let schema: { indexes: string[]; reloptions: string[] } = { indexes: [], reloptions: [] };
let admin: pg.Client;

/** Runs one phase with its CPU readings around it. */
async function measure(run: number, server: ServerProcess | undefined, body: () => Promise<TimedRun>): Promise<Measurement & { raw: TimedRun }> {
  const db0 = await postgresCpuOf(admin, dbName);
  const server0 = server?.cpuSeconds();
  const bench0 = process.cpuUsage();
  const raw = await body();
  const bench = process.cpuUsage(bench0);
  const server1 = server?.cpuSeconds();
  const db1 = await postgresCpuOf(admin, dbName);
  const samples = (raw as LatencyRun).samples;
  return {
    raw,
    run,
    jobs: raw.jobs,
    seconds: raw.seconds,
    throughput: raw.jobs / raw.seconds,
    serverCpu: server0 === undefined ? undefined : server1! - server0,
    dbCpu: db1.since(db0),
    benchCpu: (bench.user + bench.system) / 1e6,
    latency: samples ? latencyStats(samples) : undefined,
  };
}

/** Fails the bench (at the end) when a processing phase lost a job, ran one twice, or left one behind. */
async function checkProcessed(label: string, run: ProcessRun): Promise<void> {
  const problem = run.tally.problem();
  if (problem) failures.push(`${label}: ${problem}`);
  const left = await countJobs(ctl);
  if (left.jobs !== 0 || left.failed !== 0) failures.push(`${label}: ${left.jobs} jobs left in relay_jobs, ${left.failed} in relay_failed_jobs`);
}

async function checkEnqueued(label: string, n: number): Promise<void> {
  const { jobs } = await countJobs(ctl);
  if (jobs !== n) failures.push(`${label}: ${jobs} of ${n} jobs stored`);
}

interface Variant {
  system: System;
  key: string;
  label: string;
  /** Processing phases: the jobs are inserted (unmeasured) before the phase. */
  preloaded: boolean;
  /** Latency phases run for a time, not a number of jobs; no warm-up, no sizing. */
  timed?: boolean;
  /** Runs beside the CPU spinners of --load; sized like its quiet twin, no warm-up of its own. */
  loaded?: boolean;
  run(baseline: Baseline, relay: Relay, n: number): Promise<TimedRun>;
  check(label: string, r: TimedRun): Promise<void>;
}

/** Jobs per variant ("system:key"), set from the first warm-up unless fixed. */
const jobsFor = new Map<string, number>();
const LOADED = '_under_load';
const variantId = (v: Pick<Variant, 'system' | 'key'>) => `${v.system}:${v.key.replace(LOADED, '')}`;

const prefetchFor = (concurrency: number): number | 'auto' => (config.prefetchPerSlot === 'auto' ? 'auto' : Math.round(concurrency * config.prefetchPerSlot));
const prefetchLabel = (concurrency: number) => {
  const prefetch = prefetchFor(concurrency);
  return prefetch === 'auto' || prefetch > 0 ? `, prefetch ${prefetch}` : '';
};

function phases(): Variant[][] {
  const enqueued = (label: string, r: TimedRun) => checkEnqueued(label, r.jobs);
  const processed = (label: string, r: TimedRun) => checkProcessed(label, r as ProcessRun);
  const list: Variant[][] = [
    [
      { system: 'baseline', key: 'enqueue_single', label: `enqueue single, ${config.producers} producers`, preloaded: false, run: (b, _, n) => b.enqueueSingle(QUEUE, n, config.producers), check: enqueued },
      { system: 'relay', key: 'enqueue_single', label: `enqueue single, ${config.producers} producers`, preloaded: false, run: (_, r, n) => r.enqueueSingle(QUEUE, n, config.producers), check: enqueued },
    ],
    [
      { system: 'baseline', key: 'enqueue_batch', label: `enqueue batch, ${config.batch}/request`, preloaded: false, run: (b, _, n) => b.enqueueBatch(QUEUE, n, config.batch), check: enqueued },
      { system: 'relay', key: 'enqueue_batch', label: `enqueue batch, ${config.batch}/request`, preloaded: false, run: (_, r, n) => r.enqueueBatch(QUEUE, n, config.batch), check: enqueued },
    ],
  ];
  for (const batched of [false, true]) {
    const how = batched ? 'batched' : 'each';
    const phase: Variant[] = [
      {
        system: 'baseline',
        key: `process_${how}`,
        label: `process, complete ${how}, ${config.baselineConsumers} consumers claiming ${config.baselineClaim}`,
        preloaded: true,
        run: (b, _, n) => b.process(QUEUE, n, { consumers: config.baselineConsumers, claim: config.baselineClaim, batched }),
        check: processed,
      },
    ];
    for (const concurrency of config.concurrencies) {
      phase.push({
        system: 'relay',
        key: `process_${how}_c${concurrency}`,
        label: `process, complete ${how}, worker concurrency ${concurrency}${prefetchLabel(concurrency)}`,
        preloaded: true,
        run: (_, r, n) => r.process(QUEUE, n, { concurrency, prefetch: prefetchFor(concurrency), completionWindowMs: batched ? config.completionWindowMs : 0 }),
        check: processed,
      });
    }
    list.push(phase);
    if (config.load > 0) {
      list.push(phase.map((v) => ({ ...v, key: `${v.key}${LOADED}`, label: `${v.label}, under load`, loaded: true })));
    }
  }
  list.push([
    {
      system: 'baseline',
      key: 'latency',
      label: `latency at ${config.latencyRate} jobs/s, LISTEN/NOTIFY consumer`,
      preloaded: false,
      timed: true,
      run: (b) => b.latency(QUEUE, config.latencyRate, config.latencySeconds),
      check: processed,
    },
    {
      system: 'relay',
      key: 'latency',
      label: `latency at ${config.latencyRate} jobs/s, worker with long poll`,
      preloaded: false,
      timed: true,
      run: (_, r) => r.latency(QUEUE, config.latencyRate, config.latencySeconds, { concurrency: 8 }),
      check: processed,
    },
  ]);
  return list;
}

async function underLoad<T>(body: () => Promise<T>): Promise<T> {
  const load = startLoad(config.load);
  try {
    return await body();
  } finally {
    await load.stop();
  }
}

function describe(m: Measurement): string {
  const parts = [`${Math.round(m.throughput)} jobs/s (${m.jobs} in ${m.seconds.toFixed(2)} s)`];
  if (m.latency) parts.push(`p50 ${m.latency.p50.toFixed(2)} p95 ${m.latency.p95.toFixed(2)} p99 ${m.latency.p99.toFixed(2)} max ${m.latency.max.toFixed(2)} ms`);
  if (m.serverCpu !== undefined) parts.push(`server ${m.serverCpu.toFixed(2)} s CPU`);
  parts.push(`db ${m.dbCpu.toFixed(2)} s CPU`, `bench ${m.benchCpu.toFixed(2)} s CPU`);
  if (m.statementsPerJob !== undefined) parts.push(`${m.statementsPerJob.toFixed(3)} statements/job`, `upd ${m.tupUpd} hot ${m.tupHotUpd}`);
  return parts.join(', ');
}

/**
 * A few hundred jobs through every variant, unrecorded: JIT, connection pools, caches. In the
 * first run it also sizes each variant: as many jobs as it runs in phaseSeconds at the rate
 * seen here, between minJobs and jobs (rounded to 1 000).
 */
async function warmUp(run: number, baseline: Baseline, relay: Relay): Promise<void> {
  const n = config.warmupJobs;
  if (n === 0) return;
  for (const phase of phases()) {
    for (const v of phase) {
      if (v.timed || v.loaded) continue;
      await truncate(ctl);
      if (v.preloaded) await preload(ctl, QUEUE, n);
      const r = await v.run(baseline, relay, n);
      if (run === 1) {
        const sized = Math.round(((n / r.seconds) * config.phaseSeconds) / 1000) * 1000;
        jobsFor.set(variantId(v), fixedJobs ? config.jobs : Math.min(config.jobs, Math.max(config.minJobs, sized)));
      }
    }
  }
  await truncate(ctl);
}

/** One run of the throughput and latency phases, on a fresh server and fresh baseline pool. */
async function mainRun(run: number): Promise<void> {
  const order: System[] = run % 2 === 1 ? ['baseline', 'relay'] : ['relay', 'baseline'];
  const server = await ServerProcess.start({ databaseUrl: url, maxConnections: config.serverConnections });
  let baseline: Baseline | undefined;
  try {
    baseline = new Baseline(url);
    const relay = new Relay(server.url);
    log(`run ${run}/${config.runs}: warming up`);
    await warmUp(run, baseline!, relay);
    for (const phase of phases()) {
      for (const system of order) {
        for (const v of phase.filter((p) => p.system === system)) {
          await truncate(ctl);
          const n = jobsFor.get(variantId(v)) ?? config.jobs;
          if (v.preloaded) await preload(ctl, QUEUE, n);
          const m = await measure(run, server, () => (v.loaded ? underLoad(() => v.run(baseline!, relay, n)) : v.run(baseline!, relay, n)));
          const label = `run ${run} ${system} ${v.label}`;
          await v.check(label, m.raw);
          const { raw: _raw, ...kept } = m;
          record(system, v.key, kept);
          log(`  ${system.padEnd(8)} ${v.label}: ${describe(kept)}`);
        }
      }
    }
    await truncate(ctl);
  } finally {
    await baseline?.close();
    await server.stop();
  }
}

/**
 * Statements per job and HOT updates: each system processes n preloaded jobs with
 * nothing else connected to the database, and closes its connections (backends flush their
 * statistics when they exit) before the counters are read again. The relay figure counts
 * everything its server did meanwhile: start-up (migration check, LISTEN), reaper runs,
 * long-poll re-checks; nothing is subtracted.
 */
async function sqlRun(run: number): Promise<void> {
  const order: System[] = run % 2 === 1 ? ['baseline', 'relay'] : ['relay', 'baseline'];
  const kinds = [
    { key: 'enqueue', label: `enqueue single, ${config.producers} producers`, sizedBy: 'relay:enqueue_single' },
    { key: 'each', label: 'process, complete each', sizedBy: 'relay:process_each_c8' },
    { key: 'batched', label: 'process, complete batched', sizedBy: 'relay:process_batched_c8' },
    { key: 'heartbeat', label: 'process, one heartbeat with state, complete each', sizedBy: 'relay:process_each_c8' },
  ] as const;
  for (const system of order) {
    for (const kind of kinds) {
      // As many jobs as the relay phase ran, at the most sqlJobs; the same n for both systems.
      const n = Math.min(config.sqlJobs, jobsFor.get(kind.sizedBy) ?? config.sqlJobs);
      const batched = kind.key === 'batched';
      const heartbeat = kind.key === 'heartbeat';
      await truncate(ctl);
      if (kind.key !== 'enqueue') await preload(ctl, QUEUE, n);
      await waitBackendsGone(admin, dbName, BASELINE_APP);
      await waitBackendsGone(admin, dbName, RELAY_APPLICATION_NAME);
      const t0 = await readTableCounters(ctl);
      await flushOwnStats(ctl);
      const x0 = await readXacts(admin, dbName);
      let m: Measurement & { raw: TimedRun };
      if (system === 'baseline') {
        const baseline = new Baseline(url);
        try {
          m = await measure(run, undefined, () =>
            kind.key === 'enqueue'
              ? baseline.enqueueSingle(QUEUE, n, config.producers)
              : baseline.process(QUEUE, n, { consumers: config.baselineConsumers, claim: config.baselineClaim, batched, heartbeat }),
          );
        } finally {
          await baseline.close();
        }
        await waitBackendsGone(admin, dbName, BASELINE_APP);
      } else {
        const server = await ServerProcess.start({ databaseUrl: url, maxConnections: config.serverConnections });
        try {
          const relay = new Relay(server.url);
          m = await measure(run, server, () =>
            kind.key === 'enqueue'
              ? relay.enqueueSingle(QUEUE, n, config.producers)
              : relay.process(QUEUE, n, { concurrency: 8, prefetch: prefetchFor(8), completionWindowMs: batched ? config.completionWindowMs : 0, heartbeat }),
          );
        } finally {
          await server.stop();
        }
        await waitBackendsGone(admin, dbName, RELAY_APPLICATION_NAME);
      }
      const x1 = await readXacts(admin, dbName);
      const t1 = await readTableCounters(ctl);
      const label = `run ${run} ${system} SQL count, ${kind.label}`;
      if (kind.key === 'enqueue') await checkEnqueued(label, n);
      else await checkProcessed(label, m.raw as ProcessRun);
      const { raw: _raw, ...kept } = m;
      kept.statementsPerJob = (x1 - x0) / n;
      kept.tupUpd = t1.upd - t0.upd;
      kept.tupHotUpd = t1.hotUpd - t0.hotUpd;
      record(system, `sql_${kind.key}`, kept);
      log(`  ${system.padEnd(8)} SQL count, ${kind.label}, ${n} jobs: ${describe(kept)}`);
    }
  }
  await truncate(ctl);
}

function machine() {
  const cpuModel = os.cpus()[0]?.model ?? 'unknown';
  let nproc = os.availableParallelism?.() ?? os.cpus().length;
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) || nproc;
  } catch {
    // keep the os figure
  }
  return {
    nproc,
    cpuModel,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    loadAverageAtStart: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
  };
}

/** The commit measured, and whether server/, client/ or worker/ had uncommitted changes then. */
function source(): { commit: string; uncommitted: string[] } {
  const git = (...a: string[]) => execFileSync('git', a, { cwd: ROOT, encoding: 'utf8' });
  try {
    const changed = git('status', '--porcelain', '--', 'server', 'client', 'worker', 'openapi.yaml').split('\n').filter(Boolean);
    return { commit: git('rev-parse', '--short', 'HEAD').trim(), uncommitted: changed.map((l) => l.slice(3)) };
  } catch {
    return { commit: 'unknown', uncommitted: [] };
  }
}

async function postgresInfo() {
  const { rows } = await admin.query<{ name: string; setting: string }>(
    `SELECT name, setting FROM pg_settings WHERE name IN ('server_version', 'shared_buffers', 'synchronous_commit', 'fsync', 'max_connections', 'shared_preload_libraries')`,
  );
  const s = Object.fromEntries(rows.map((r) => [r.name, r.setting]));
  const version = (await admin.query<{ v: string }>('SELECT version() AS v')).rows[0]!.v;
  return { version, settings: s };
}

/** The indexes and storage options of relay_jobs as the runs found them (HOT updates depend on them). */
async function schemaInfo(): Promise<{ indexes: string[]; reloptions: string[] }> {
  const { rows } = await ctl.query<{ indexdef: string }>(`SELECT indexdef FROM pg_indexes WHERE tablename = 'relay_jobs' ORDER BY indexname`);
  const opts = await ctl.query<{ reloptions: string[] | null }>(`SELECT reloptions FROM pg_class WHERE relname = 'relay_jobs' AND relkind = 'r'`);
  return { indexes: rows.map((r) => r.indexdef), reloptions: opts.rows[0]?.reloptions ?? [] };
}

function figures(): { throughput: Figure[]; latency: Figure[]; cpu: Figure[]; sql: Figure[]; load: LoadFigure[] } {
  const pick = (system: System, key: string, f: (m: Measurement) => number | undefined) => {
    const ms = results[system][key];
    return ms ? ms.map((m) => f(m) ?? NaN) : undefined;
  };
  const tput = (m: Measurement) => m.throughput;
  const jobsNote = (b: string, r: string) => {
    const nb = results.baseline[b]?.[0]?.jobs;
    const nr = results.relay[r]?.[0]?.jobs;
    return nb === undefined || nr === undefined ? undefined : nb === nr ? `(${nb} jobs)` : `(${nb} / ${nr} jobs)`;
  };
  const per1000 = (cpu: (m: Measurement) => number | undefined) => (m: Measurement) => {
    const c = cpu(m);
    return c === undefined ? undefined : (c / m.jobs) * 1000;
  };
  const throughput: Figure[] = [
    figure(`enqueue single, ${config.producers} concurrent producers`, 'jobs/s', 'higher', pick('baseline', 'enqueue_single', tput), pick('relay', 'enqueue_single', tput), jobsNote('enqueue_single', 'enqueue_single')),
    figure(`enqueue batch, ${config.batch} per request`, 'jobs/s', 'higher', pick('baseline', 'enqueue_batch', tput), pick('relay', 'enqueue_batch', tput), jobsNote('enqueue_batch', 'enqueue_batch')),
  ];
  for (const how of ['each', 'batched']) {
    for (const c of config.concurrencies) {
      throughput.push(
        figure(
          `process, complete ${how}, worker concurrency ${c}${prefetchLabel(c)}`,
          'jobs/s',
          'higher',
          pick('baseline', `process_${how}`, tput),
          pick('relay', `process_${how}_c${c}`, tput),
          jobsNote(`process_${how}`, `process_${how}_c${c}`),
        ),
      );
    }
  }
  const load: LoadFigure[] = [];
  if (config.load > 0) {
    for (const how of ['each', 'batched']) {
      for (const c of config.concurrencies) {
        const quiet = figure('', 'jobs/s', 'higher', pick('baseline', `process_${how}`, tput), pick('relay', `process_${how}_c${c}`, tput));
        const loaded = figure(
          `process, complete ${how}, worker concurrency ${c}${prefetchLabel(c)}, beside ${config.load} CPU spinners`,
          'jobs/s',
          'higher',
          pick('baseline', `process_${how}${LOADED}`, tput),
          pick('relay', `process_${how}_c${c}${LOADED}`, tput),
        );
        throughput.push(loaded);
        load.push({ label: `process, complete ${how}, worker concurrency ${c}`, quiet: quiet.ratio, loaded: loaded.ratio });
      }
    }
  }
  const latency: Figure[] = (['p50', 'p95', 'p99', 'max'] as const).map((p) =>
    figure(`latency enqueue → process, ${p}`, 'ms', 'lower', pick('baseline', 'latency', (m) => m.latency?.[p]), pick('relay', 'latency', (m) => m.latency?.[p])),
  );
  const cpu: Figure[] = [];
  const cpuKeys: [string, string, string][] = [
    ['enqueue single', 'enqueue_single', 'enqueue_single'],
    ['enqueue batch', 'enqueue_batch', 'enqueue_batch'],
    ...config.concurrencies.flatMap((c): [string, string, string][] => [
      [`process, complete each, c${c}`, 'process_each', `process_each_c${c}`],
      [`process, complete batched, c${c}`, 'process_batched', `process_batched_c${c}`],
    ]),
    ['latency phase', 'latency', 'latency'],
  ];
  for (const [label, b, r] of cpuKeys) {
    cpu.push(figure(`relay server CPU, ${label}`, 's/1000 jobs', 'lower', undefined, pick('relay', r, per1000((m) => m.serverCpu))));
  }
  for (const [label, b, r] of cpuKeys) {
    cpu.push(figure(`PostgreSQL CPU, ${label}`, 's/1000 jobs', 'lower', pick('baseline', b, per1000((m) => m.dbCpu)), pick('relay', r, per1000((m) => m.dbCpu))));
  }
  for (const [label, b, r] of cpuKeys) {
    cpu.push(figure(`bench process CPU (client side), ${label}`, 's/1000 jobs', 'lower', pick('baseline', b, per1000((m) => m.benchCpu)), pick('relay', r, per1000((m) => m.benchCpu))));
  }
  const hot = (m: Measurement) => (m.tupUpd ? (m.tupHotUpd ?? 0) / m.tupUpd : NaN);
  const upd = (m: Measurement) => (m.tupUpd === undefined ? NaN : m.tupUpd / m.jobs);
  const sql: Figure[] = [
    figure(`SQL statements per job, enqueue single (${config.producers} producers)`, 'statements', 'lower', pick('baseline', 'sql_enqueue', (m) => m.statementsPerJob), pick('relay', 'sql_enqueue', (m) => m.statementsPerJob), jobsNote('sql_enqueue', 'sql_enqueue')),
    figure('SQL statements per job, complete each (c8)', 'statements', 'lower', pick('baseline', 'sql_each', (m) => m.statementsPerJob), pick('relay', 'sql_each', (m) => m.statementsPerJob), jobsNote('sql_each', 'sql_each')),
    figure('SQL statements per job, batched complete (c8)', 'statements', 'lower', pick('baseline', 'sql_batched', (m) => m.statementsPerJob), pick('relay', 'sql_batched', (m) => m.statementsPerJob), jobsNote('sql_batched', 'sql_batched')),
    figure('SQL statements per job, one heartbeat with state, complete each (c8)', 'statements', 'lower', pick('baseline', 'sql_heartbeat', (m) => m.statementsPerJob), pick('relay', 'sql_heartbeat', (m) => m.statementsPerJob), jobsNote('sql_heartbeat', 'sql_heartbeat')),
    figure('relay_jobs row updates per job (n_tup_upd), complete each', 'updates', 'lower', pick('baseline', 'sql_each', upd), pick('relay', 'sql_each', upd)),
    figure('relay_jobs n_tup_hot_upd / n_tup_upd, complete each (the claims)', 'ratio', 'higher', pick('baseline', 'sql_each', hot), pick('relay', 'sql_each', hot)),
    figure('relay_jobs n_tup_hot_upd / n_tup_upd, batched complete (the claims)', 'ratio', 'higher', pick('baseline', 'sql_batched', hot), pick('relay', 'sql_batched', hot)),
    figure('relay_jobs row updates per job (n_tup_upd), one heartbeat each', 'updates', 'lower', pick('baseline', 'sql_heartbeat', upd), pick('relay', 'sql_heartbeat', upd)),
    figure('relay_jobs n_tup_hot_upd / n_tup_upd, one heartbeat each (claims + heartbeats)', 'ratio', 'higher', pick('baseline', 'sql_heartbeat', hot), pick('relay', 'sql_heartbeat', hot)),
  ];
  return { throughput, latency, cpu, sql, load };
}

/** A processing figure's ratio to the baseline on the quiet host and beside the spinners of --load. */
interface LoadFigure {
  label: string;
  quiet?: number;
  loaded?: number;
}

function loadTable(rows: LoadFigure[]): string {
  const r = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '—' : `${v.toFixed(2)}×`);
  return [
    '| figure | relay / baseline, quiet | relay / baseline, under load | under load / quiet (target ≥ 0.80) |',
    '|---|---|---|---|',
    ...rows.map((f) => {
      const held = f.quiet !== undefined && f.loaded !== undefined ? f.loaded / f.quiet : undefined;
      return `| ${f.label} | ${r(f.quiet)} | ${r(f.loaded)} | ${held === undefined || !Number.isFinite(held) ? '—' : `**${held.toFixed(2)}**`} |`;
    }),
  ].join('\n');
}

async function main(): Promise<void> {
  if (args.includes('--peers')) {
    const { runPeers } = await import('./peers/index.js');
    await runPeers(args);
    return;
  }
  if (args.includes('--profile')) {
    await ensureDatabase(url);
    await runProfile(url, { jobs: flag('--jobs') ? config.jobs : 5_000, concurrency: Number(flag('--concurrency') ?? 8), serverConnections: config.serverConnections, queue: QUEUE, against: flag('--against') });
    return;
  }
  const started = new Date();
  const t0 = performance.now();
  await ensureDatabase(url);
  admin = new pg.Client({ connectionString: adminUrl(url), application_name: 'relay-bench-admin' });
  await admin.connect();
  if (config.synchronousCommit !== undefined) {
    // For every connection opened from now on: the pools are made per run.
    await admin.query(`ALTER DATABASE ${pg.escapeIdentifier(dbName)} SET synchronous_commit = ${config.synchronousCommit}`);
  }
  ctl = new pg.Client({ connectionString: url, application_name: 'relay-bench-control' });
  await ctl.connect();
  const info = { machine: machine(), postgres: await postgresInfo(), source: source(), loopback: await loopbackRoundTrip(quick ? 200 : 2_000) };
  log(
    `relay-ts bench${quick ? ' (quick)' : ''}: ${info.machine.nproc} CPUs (${info.machine.cpuModel}), ${info.postgres.version.split(' on ')[0]}, Node ${info.machine.node}, ` +
      `load average ${info.machine.loadAverageAtStart}; database ${dbName}; ${config.runs} run(s) of up to ${config.jobs} jobs per phase` +
      (config.synchronousCommit ? `; synchronous_commit = ${config.synchronousCommit}` : ''),
  );
  log(`loopback round trip between two idle processes: ${roundTrip(info.loopback)}`);
  try {
    for (let run = 1; run <= config.runs; run++) {
      await mainRun(run);
      log(`run ${run}/${config.runs}: counting SQL statements`);
      await sqlRun(run);
    }
    schema = await schemaInfo();
  } finally {
    await ctl.end();
    if (config.synchronousCommit !== undefined) {
      await admin.query(`ALTER DATABASE ${pg.escapeIdentifier(dbName)} RESET synchronous_commit`);
    }
    await admin.end();
  }
  const seconds = (performance.now() - t0) / 1000;
  const f = figures();
  const loadAtEnd = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const baselineSql = new Baseline(url);
  const statements = baselineSql.statements();
  await baselineSql.close();
  const json = {
    started: started.toISOString(),
    seconds,
    config,
    database: dbName,
    machine: { ...info.machine, loadAverageAtEnd: loadAtEnd, loopbackRoundTripMs: info.loopback },
    postgres: info.postgres,
    source: info.source,
    relayJobsSchema: schema,
    figures: f,
    measurements: results,
    baselineStatements: statements,
    failures,
  };
  const md = markdown(info, loadAtEnd, seconds, f);
  mkdirSync(`${ROOT}bench-results`, { recursive: true });
  writeFileSync(`${ROOT}bench-results/bench-${stamp}.json`, `${JSON.stringify(json, null, 2)}\n`);
  writeFileSync(`${ROOT}bench-results/latest.md`, md);
  process.stdout.write(md);
  log(`\nwrote bench-results/bench-${stamp}.json and bench-results/latest.md (${seconds.toFixed(0)} s)`);
  if (failures.length > 0) {
    log(`\nFAILED:\n${failures.map((x) => `  - ${x}`).join('\n')}`);
    process.exitCode = 1;
  }
}

function roundTrip(r: RoundTrip): string {
  return `p50 ${r.p50.toFixed(2)} / p99 ${r.p99.toFixed(2)} / max ${r.max.toFixed(2)} ms (${r.samples} pings)`;
}

function markdown(info: { machine: ReturnType<typeof machine>; postgres: Awaited<ReturnType<typeof postgresInfo>>; source: ReturnType<typeof source>; loopback: RoundTrip }, loadAtEnd: string, seconds: number, f: ReturnType<typeof figures>): string {
  const m = info.machine;
  const runs = config.runs === 1 ? '1 run' : `median of ${config.runs} interleaved runs (min – max)`;
  return [
    `# relay-ts bench${quick ? ' (--quick: a smoke test, not a measurement)' : ''}`,
    '',
    `${new Date().toISOString()} · ${m.nproc} CPUs, ${m.cpuModel}, ${m.memoryGiB} GiB · ${info.postgres.version.split(' on ')[0]} ` +
      `(shared_buffers ${info.postgres.settings.shared_buffers} × 8 kB, synchronous_commit ${config.synchronousCommit ?? info.postgres.settings.synchronous_commit}) · Node ${m.node} · ` +
      `load average ${m.loadAverageAtStart} at start, ${loadAtEnd} at end · loopback round trip between two idle processes ${roundTrip(info.loopback)} · ${seconds.toFixed(0)} s · ` +
      `commit ${info.source.commit}${info.source.uncommitted.length ? ` with uncommitted changes in ${info.source.uncommitted.join(', ')}` : ''}`,
    '',
    `${fixedJobs ? `${config.jobs} jobs per phase` : `Up to ${config.jobs} jobs per phase (fewer when the warm-up showed it would take over ${config.phaseSeconds} s; counts in the table)`}, ${runs}. Baseline: the same statements through \`pg\`, no HTTP (8 connections; claims of ${config.baselineClaim}). ` +
      `relay-ts: RelayClient and the Worker runtime against \`node server/dist/bin.js\` (pool ${config.serverConnections}), batched completion window ${config.completionWindowMs} ms, worker prefetch ${config.prefetchPerSlot === 'auto' ? "'auto'" : `${config.prefetchPerSlot} × its concurrency`} in the processing phases.`,
    '',
    '## Throughput and latency',
    '',
    table([...f.throughput, ...f.latency]),
    '',
    ...(f.load.length
      ? [
          `## Under load (beside ${config.load} CPU spinners, scripts/bench/load.ts; the same runs, interleaved with the quiet phases)`,
          '',
          loadTable(f.load),
          '',
        ]
      : []),
    '## CPU per 1 000 jobs',
    '',
    table(f.cpu),
    '',
    `## SQL (relay: worker concurrency 8${prefetchLabel(8)}; each count on a fresh server)`,
    '',
    table(f.sql),
    '',
    'Statements per job: the delta of `xact_commit + xact_rollback` of the bench database in `pg_stat_database` ' +
      '(every relay statement is its own transaction), read after the system\'s connections closed; for relay-ts it includes ' +
      'the server\'s start-up, its reaper (every 1 s) and long-poll re-checks: nothing is subtracted. ' +
      'HOT: an update is HOT only when it changes no indexed column (keys or partial-index predicates) and the page has room. relay_jobs as measured:',
    '',
    ...schema.indexes.map((i) => `- \`${i}\``),
    `- storage options: ${schema.reloptions.length ? schema.reloptions.map((o) => `\`${o}\``).join(', ') : 'none'}`,
    '',
    ...(failures.length ? ['## FAILURES', '', ...failures.map((x) => `- ${x}`), ''] : []),
  ].join('\n');
}

main().then(
  // Exit now: a timer left behind by a library (e.g. a worker's shutdown timeout) must not
  // keep the bench alive after its last phase.
  () => process.exit(),
  (err) => {
    log(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
