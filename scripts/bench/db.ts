/**
 * The benchmark's PostgreSQL side: the database (created when missing), truncation between
 * phases, preloading jobs, the counters of pg_stat_database / pg_stat_user_tables, and the
 * statements of server/src/sql/ that the raw-SQL baseline reuses verbatim.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { HEARTBEAT } from '../../server/src/sql/heartbeat.js';
import { NEXT } from '../../server/src/sql/next.js';
import { JOBS_CHANNEL } from '../../server/src/notifier.js';

export const DEFAULT_DATABASE_URL = 'postgres://root@127.0.0.1:5432/relay_bench';

/** Creates the database of `url` (through the `postgres` database of the same server) when missing. */
export async function ensureDatabase(url: string): Promise<void> {
  const probe = new pg.Client({ connectionString: url });
  try {
    await probe.connect();
    await probe.end();
    return;
  } catch (err) {
    await probe.end().catch(() => undefined);
    if ((err as { code?: string }).code !== '3D000') throw err; // 3D000: invalid_catalog_name
  }
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const c = new pg.Client({ connectionString: admin.toString() });
  await c.connect();
  try {
    await c.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } catch (err) {
    if ((err as { code?: string }).code !== '42P04') throw err; // created meanwhile
  } finally {
    await c.end();
  }
}

/** The URL of the `postgres` database on the same server: counters read from there do not count. */
export function adminUrl(url: string): string {
  const u = new URL(url);
  u.pathname = '/postgres';
  return u.toString();
}

export async function truncate(c: pg.ClientBase): Promise<void> {
  await c.query('TRUNCATE relay_jobs, relay_failed_jobs');
}

/**
 * Inserts n waiting jobs (ids "0".."n-1", payload {"i": n}) in queue, then ANALYZE, and
 * announces them as another relay server's enqueue would. Unannounced, they would be invisible
 * to a server that found the queue empty less than its re-check interval ago (the end of the
 * previous phase): its first long poll would sleep until the re-check, and the phase would
 * time that sleep rather than the queue.
 */
export async function preload(c: pg.ClientBase, queue: string, n: number): Promise<void> {
  await c.query(
    `INSERT INTO relay_jobs (queue, id, timeout, payload)
     SELECT $1, i::text, 60, jsonb_build_object('i', i) FROM generate_series(0, $2::int - 1) i`,
    [queue, n],
  );
  await c.query('ANALYZE relay_jobs');
  await c.query('SELECT pg_notify($1, $2)', [JOBS_CHANNEL, `bench-preload:${queue}`]);
}

export async function countJobs(c: pg.ClientBase): Promise<{ jobs: number; failed: number }> {
  const { rows } = await c.query<{ jobs: number; failed: number }>(
    'SELECT (SELECT count(*) FROM relay_jobs)::int AS jobs, (SELECT count(*) FROM relay_failed_jobs)::int AS failed',
  );
  return rows[0]!;
}

/**
 * xact_commit + xact_rollback of the bench database, as flushed so far. On PostgreSQL 15 a
 * backend flushes its statistics when it goes idle at most once a second (otherwise within
 * 10 s), and always when it exits: read this only after the backends of interest have exited
 * (pool closed, server stopped). `admin` must be connected to another database, so that
 * reading does not count.
 */
export async function readXacts(admin: pg.ClientBase, dbName: string): Promise<number> {
  await admin.query('SELECT pg_stat_clear_snapshot()');
  const { rows } = await admin.query<{ xacts: string }>(
    'SELECT (xact_commit + xact_rollback)::text AS xacts FROM pg_stat_database WHERE datname = $1',
    [dbName],
  );
  return Number(rows[0]?.xacts ?? NaN);
}

/**
 * n_tup_upd and n_tup_hot_upd of relay_jobs, read from a connection to the bench database
 * (pg_stat_user_tables shows the current database only). Same flushing caveat as readXacts.
 */
export async function readTableCounters(c: pg.ClientBase): Promise<{ upd: number; hotUpd: number }> {
  await c.query('SELECT pg_stat_clear_snapshot()');
  const { rows } = await c.query<{ upd: string; hot: string }>(
    `SELECT n_tup_upd::text AS upd, n_tup_hot_upd::text AS hot FROM pg_stat_user_tables WHERE relname = 'relay_jobs'`,
  );
  return { upd: Number(rows[0]?.upd ?? NaN), hotUpd: Number(rows[0]?.hot ?? NaN) };
}

/** Makes this connection's pending statistics visible now (PostgreSQL 15+; a no-op before). */
export async function flushOwnStats(c: pg.ClientBase): Promise<void> {
  await c.query('SELECT pg_stat_force_next_flush()').catch(() => undefined);
  // The flush happens when the backend goes idle after that statement; one more round trip
  // makes sure it has.
  await c.query('SELECT 1');
}

/** Waits until no backend with this application_name is connected to dbName (so their stats are flushed). */
export async function waitBackendsGone(admin: pg.ClientBase, dbName: string, applicationName: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await admin.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = $2',
      [dbName, applicationName],
    );
    if (rows[0]!.n === 0) return;
    if (Date.now() > deadline) throw new Error(`backends of ${applicationName} still connected after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// --- The statements of server/src/sql/ ----------------------------------------------------

export interface StoreStatement {
  name: string;
  text: string;
}

const STATEMENTS = { NEXT, HEARTBEAT };

/**
 * A statement of server/src/sql/, e.g. `NEXT`, exactly as the server sends it, so that the
 * baseline runs the same SQL. `params` is the number of parameters the baseline passes: if
 * the statement changes shape the bench stops rather than measure something else.
 */
export function storeStatement(constName: keyof typeof STATEMENTS, params: number): StoreStatement {
  const { name, text } = STATEMENTS[constName];
  const highest = Math.max(0, ...[...text.matchAll(/\$(\d+)/g)].map((p) => Number(p[1])));
  if (highest !== params) {
    throw new Error(`scripts/bench: ${constName} in server/src/sql/ takes ${highest} parameters, the baseline passes ${params}; update scripts/bench/baseline.ts`);
  }
  return { name: `bench_${name}`, text };
}

// --- CPU of the PostgreSQL processes ---------------------------------------------------------

/** CPU seconds (user + system) of one process, from /proc/<pid>/stat; NaN when it is gone. */
export function processCpuSeconds(pid: number, ticks = clockTicks()): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at field 3 (state).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / ticks; // utime (14), stime (15)
  } catch {
    return NaN;
  }
}

let ticksCache: number | undefined;
/** `getconf CLK_TCK`: the unit of utime and stime in /proc/<pid>/stat. */
export function clockTicks(): number {
  if (ticksCache === undefined) {
    try {
      ticksCache = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksCache = 100;
    }
  }
  return ticksCache;
}

export interface PostgresCpu {
  /** CPU seconds per backend pid. */
  readonly byPid: Map<number, number>;
  /** CPU used since `before` (backends that appeared since count from zero). */
  since(before: PostgresCpu): number;
}

/**
 * CPU seconds of the PostgreSQL backends connected to dbName (clients and autovacuum), from
 * /proc: PostgreSQL must run on this host. Background processes shared with other databases
 * (WAL writer, checkpointer) are left out. A backend that exits takes its CPU time with it,
 * so take both readings while the connections of interest are open.
 */
export async function postgresCpuOf(admin: pg.ClientBase, dbName: string): Promise<PostgresCpu> {
  const { rows } = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [dbName]);
  const ticks = clockTicks();
  const byPid = new Map<number, number>();
  for (const { pid } of rows) {
    const cpu = processCpuSeconds(pid, ticks);
    if (Number.isFinite(cpu)) byPid.set(pid, cpu);
  }
  return {
    byPid,
    since(before) {
      let total = 0;
      for (const [pid, cpu] of byPid) total += cpu - (before.byPid.get(pid) ?? 0);
      return total;
    },
  };
}
