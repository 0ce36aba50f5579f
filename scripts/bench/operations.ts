/**
 * npm run bench:operations [-- --jobs 1000000 --queues 100 --runs 30]
 *
 * The operations API on a large database (issue 12): one million jobs in 100 queues on the
 * real PostgreSQL (BENCH_DATABASE_URL, else relay_ops_bench, EMPTIED first), each queue with
 * 85 % waiting, 10 % scheduled, 4 % in flight and 1 % failed. A relay-server process answers;
 * this process times sequential requests (median and p95 of --runs after a warm-up) for
 * GET /v1/queues, GET /v1/queues/{queue}, and GET /v1/jobs pages (first and deep) per status,
 * then again right after a burst of single enqueues (count deltas not folded yet), and prints
 * the plans of the statements behind them (EXPLAIN ANALYZE, BUFFERS).
 * Output: stdout and bench-results/operations-latest.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import pg from 'pg';
import { listStatements } from '../../server/src/sql/list-jobs.js';
import { queueStatements } from '../../server/src/sql/queues.js';
import { ensureDatabase } from './db.js';
import { ServerProcess } from './server.js';
import { median } from './stats.js';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const totalJobs = flag('--jobs', 1_000_000);
const queues = flag('--queues', 100);
const runs = flag('--runs', 30);
const perQueue = Math.floor(totalJobs / queues);

const url = process.env.BENCH_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/relay_ops_bench';
await ensureDatabase(url);
// A server's start migrates the database.
await (await ServerProcess.start({ databaseUrl: url, maxConnections: 4 })).stop();

const db = new pg.Client(url);
await db.connect();
const out: string[] = [];
const say = (line = '') => {
  console.log(line);
  out.push(line);
};

console.log(`loading ${totalJobs} jobs in ${queues} queues...`);
const loadStart = Date.now();
await db.query('TRUNCATE relay_jobs, relay_failed_jobs, relay_queues, relay_queue_counts, relay_queue_count_deltas');
const share = (fraction: number) => Math.floor(perQueue * fraction);
const [waiting, scheduled, inFlight] = [share(0.85), share(0.1), share(0.04)];
const failed = perQueue - waiting - scheduled - inFlight;
// One statement per queue and status, as a bulk load through the API would store them.
for (let q = 0; q < queues; q++) {
  const queue = `queue-${String(q).padStart(3, '0')}`;
  await db.query(
    `INSERT INTO relay_jobs (queue, id, timeout, payload, run_at)
     SELECT $1, 'w' || i, 60, jsonb_build_object('i', i), now() - interval '1 hour' + i * interval '1 ms' FROM generate_series(1, $2::int) i`,
    [queue, waiting],
  );
  await db.query(
    `INSERT INTO relay_jobs (queue, id, timeout, payload, run_at)
     SELECT $1, 's' || i, 60, jsonb_build_object('i', i), now() + interval '1 day' + i * interval '1 ms' FROM generate_series(1, $2::int) i`,
    [queue, scheduled],
  );
  await db.query(
    `INSERT INTO relay_jobs (queue, id, timeout, payload, run_id, attempt, lease_expires_at)
     SELECT $1, 'f' || i, 3600, jsonb_build_object('i', i), nextval('relay_run_seq'), 1, now() + interval '1 hour' FROM generate_series(1, $2::int) i`,
    [queue, inFlight],
  );
  await db.query(
    `INSERT INTO relay_failed_jobs (queue, id, timeout, max_retries, attempts, payload, run_at, enqueued_at, reason)
     SELECT $1, 'x' || i, 60, 0, 1, jsonb_build_object('i', i), now(), now(), 'lease expired' FROM generate_series(1, $2::int) i`,
    [queue, failed],
  );
}
await db.query('VACUUM ANALYZE relay_jobs');
await db.query('VACUUM ANALYZE relay_failed_jobs');
const loadSeconds = (Date.now() - loadStart) / 1000;

// Reaper every second: the deltas of the load are folded before the first measurement.
const server = await ServerProcess.start({ databaseUrl: url, maxConnections: 4 });
await new Promise((r) => setTimeout(r, 2500));

async function time(path: string): Promise<{ median: number; p95: number; status: number; bytes: number }> {
  let status = 0;
  let bytes = 0;
  const samples: number[] = [];
  for (let i = 0; i < runs + 5; i++) {
    const started = performance.now();
    const res = await fetch(server.url + path);
    const body = await res.text();
    const ms = performance.now() - started;
    status = res.status;
    bytes = body.length;
    if (i >= 5) samples.push(ms);
  }
  samples.sort((a, b) => a - b);
  return { median: median(samples), p95: samples[Math.min(samples.length - 1, Math.floor(samples.length * 0.95))]!, status, bytes };
}

const q = 'queue-042';
async function cursorAfter(status: string, skip: number): Promise<string> {
  const res = await fetch(`${server.url}/v1/jobs?queue=${q}&status=${status}&limit=${skip}`);
  return ((await res.json()) as { next_cursor: string }).next_cursor;
}
// Deep pages: past the first tenth of the waiting jobs, and half the failed ones.
const deepSkip = Math.max(1, Math.min(1000, Math.floor(waiting / 10)));
const failedSkip = Math.max(1, Math.floor(failed / 2));
const deepWaiting = await cursorAfter('waiting', deepSkip);
const deepFailed = await cursorAfter('failed', failedSkip);

const probes: Array<[string, string]> = [
  ['GET /v1/queues (all 100)', '/v1/queues'],
  ['GET /v1/queues/{queue}', `/v1/queues/${q}`],
  ['GET /v1/jobs waiting, first page of 100', `/v1/jobs?queue=${q}&status=waiting&limit=100`],
  [`GET /v1/jobs waiting, page after ${deepSkip}`, `/v1/jobs?queue=${q}&status=waiting&limit=100&cursor=${deepWaiting}`],
  ['GET /v1/jobs scheduled, first page of 100', `/v1/jobs?queue=${q}&status=scheduled&limit=100`],
  ['GET /v1/jobs in_flight, first page of 100', `/v1/jobs?queue=${q}&status=in_flight&limit=100`],
  [`GET /v1/jobs failed, page after ${failedSkip}`, `/v1/jobs?queue=${q}&status=failed&limit=50&cursor=${deepFailed}`],
  ['GET /v1/queues/{queue}/jobs/{id}', `/v1/queues/${q}/jobs/w5000`],
];

const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
say(`# Operations API latency (${new Date().toISOString()}, commit ${commit})`);
say();
say(`${totalJobs} jobs in ${queues} queues (per queue: ${waiting} waiting, ${scheduled} scheduled, ${inFlight} in flight, ${failed} failed), loaded in ${loadSeconds.toFixed(0)} s; PostgreSQL ${(await db.query('SHOW server_version')).rows[0].server_version}; ${runs} sequential requests each after 5 of warm-up, over loopback HTTP to a relay-server process.`);
say();
say('| request | median ms | p95 ms | status | bytes |');
say('|---|---|---|---|---|');
for (const [title, path] of probes) {
  const t = await time(path);
  say(`| ${title} | ${t.median.toFixed(2)} | ${t.p95.toFixed(2)} | ${t.status} | ${t.bytes} |`);
}

// Count deltas not folded yet: a burst of single enqueues, each its own statement.
const burst = 2000;
await Promise.all(
  Array.from({ length: 50 }, async (_, w) => {
    for (let i = w; i < burst; i += 50) {
      await fetch(`${server.url}/enqueue`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: `burst-${i}`, queue: `queue-${String(i % queues).padStart(3, '0')}`, timeout: 60 }),
      });
    }
  }),
);
const deltas = (await db.query('SELECT count(*)::int AS n FROM relay_queue_count_deltas')).rows[0].n as number;
const afterBurst = await time('/v1/queues');
say(`| GET /v1/queues right after ${burst} single enqueues (${deltas} count deltas not folded) | ${afterBurst.median.toFixed(2)} | ${afterBurst.p95.toFixed(2)} | ${afterBurst.status} | ${afterBurst.bytes} |`);
say();

async function explain(title: string, text: string, params: unknown[]) {
  const { rows } = await db.query(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY ON) ${text}`, params);
  say(`### ${title}`);
  say('```');
  for (const r of rows) say(r['QUERY PLAN']);
  say('```');
}
await explain('queue summaries, all queues', queueStatements.QUEUE_SUMMARIES.text, [null]);
const position = JSON.parse(Buffer.from(deepWaiting, 'base64url').toString()) as { runAt: string; seq: string };
await explain(`waiting jobs, page after ${deepSkip}`, listStatements.LIST_WAITING.text, [q, position.runAt, position.seq, 100]);

await server.stop();
await db.end();
mkdirSync('bench-results', { recursive: true });
writeFileSync('bench-results/operations-latest.md', out.join('\n') + '\n');
