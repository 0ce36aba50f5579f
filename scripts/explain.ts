/**
 * Prints the plans of the hot statements on a database filled with N waiting jobs.
 *   DATABASE_URL=postgres://... npx tsx scripts/explain.ts [N=100000]
 * The database is migrated, and relay_jobs is EMPTIED first: use a scratch database.
 */
import pg from 'pg';
import { createLogger, defaults, startServer } from '../server/src/index.js';

const url = process.env.DATABASE_URL;
if (!url) throw new Error('set DATABASE_URL to a scratch database');
const n = Number(process.argv[2] ?? 100_000);

const server = await startServer({ ...defaults, port: 0, databaseUrl: url }, createLogger('silent'));
await server.close();

const c = new pg.Client(url);
await c.connect();
await c.query('TRUNCATE relay_jobs');
await c.query(`INSERT INTO relay_jobs (queue, id, timeout) SELECT 'q' || (i % 10), i::text, 30 FROM generate_series(1, $1::int) i`, [n]);
// A few hundred in flight in one queue, as under load.
await c.query(`UPDATE relay_jobs SET run_id = nextval('relay_run_seq'), lease_expires_at = now() + interval '30 seconds'
               WHERE queue = 'q1' AND id::int % 200 = 1`);
await c.query('VACUUM ANALYZE relay_jobs');

async function explain(title: string, sql: string) {
  await c.query('BEGIN');
  const { rows } = await c.query(`EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) ${sql}`);
  await c.query('ROLLBACK');
  console.log(`--- ${title}`);
  for (const r of rows) console.log(r['QUERY PLAN']);
}

await explain(`next: claim 10 of ${n} waiting jobs`, `
  WITH picked AS (
    SELECT queue, id FROM relay_jobs WHERE queue = 'q3' AND run_id IS NULL AND run_at <= now()
    ORDER BY run_at, seq LIMIT 10 FOR UPDATE SKIP LOCKED
  ), claimed AS (
    UPDATE relay_jobs j SET run_id = nextval('relay_run_seq'), attempt = j.attempt + 1,
      lease_expires_at = now() + j.timeout * interval '1 second'
    FROM picked p WHERE j.queue = p.queue AND j.id = p.id
    RETURNING j.id, j.run_at, j.seq
  ) SELECT id FROM claimed ORDER BY run_at, seq`);
await explain('reaper: find expired leases', `
  SELECT queue, id FROM relay_jobs WHERE run_id IS NOT NULL AND lease_expires_at < now()
  LIMIT 1000 FOR UPDATE SKIP LOCKED`);
await explain('heartbeat', `
  UPDATE relay_jobs SET lease_expires_at = now() + timeout * interval '1 second'
  WHERE queue = 'q1' AND id = '201' AND run_id IS NOT NULL`);
await explain('complete', `DELETE FROM relay_jobs WHERE queue = 'q1' AND id = '201'`);
await c.end();
