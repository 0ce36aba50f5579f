/**
 * Prints the plans of the store's hot statements (the SQL the server runs, with parameters) on
 * a database filled with N waiting jobs.
 *   DATABASE_URL=postgres://... npx tsx scripts/explain.ts [N=100000]
 * The database is migrated, and relay_jobs is EMPTIED first: use a scratch database.
 */
import pg from 'pg';
import { createLogger, defaults, startServer } from '../server/src/index.js';
import { hotStatements } from '../server/src/sql/index.js';

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

/** EXPLAIN ANALYZE of one of the store's own statements with these parameters, rolled back. */
async function explain(title: string, statement: { text: string }, params: unknown[]) {
  await c.query('BEGIN');
  const { rows } = await c.query(`EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) ${statement.text}`, params);
  await c.query('ROLLBACK');
  console.log(`--- ${title}`);
  for (const r of rows) console.log(r['QUERY PLAN']);
}

const inFlight = (await c.query<{ id: string; run_id: string }>(`SELECT id, run_id::text FROM relay_jobs WHERE queue = 'q1' AND run_id IS NOT NULL LIMIT 1`)).rows[0]!;
await explain(`next: claim 10 of ${n} waiting jobs`, hotStatements.next, ['q3', 10]);
await explain('reaper: expired leases (none expired)', hotStatements.reap, [1000]);
await explain('heartbeat with state and run_id', hotStatements.heartbeat, ['q1', inFlight.id, true, '{"step":1}', inFlight.run_id]);
await explain('complete (one job, with run_id)', hotStatements.complete, [JSON.stringify([{ queue: 'q1', job_id: inFlight.id, run_id: inFlight.run_id }])]);
await explain('enqueue (one job)', hotStatements.enqueue, [JSON.stringify([{ queue: 'q3', id: 'new', timeout: 30 }])]);
await c.end();
