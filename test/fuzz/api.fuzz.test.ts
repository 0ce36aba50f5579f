import { randomUUID } from 'node:crypto';
import querystring from 'node:querystring';
import fc from 'fast-check';
import { backend } from '../helpers/relay.js';
import { cycle as cycleArb, fuzzContext, fuzzRequest, type AtomicityProbe, type Cycle, type FuzzContext } from './arbitraries.js';
import { breaches, check, inspectJson, judge, readRunAt, violation, type Limits } from './oracle.js';
import { HealthProber, Ledger } from './observers.js';
import { ServerThread } from './server-thread.js';
import { documentedLimits, operation, routeOf } from './spec.js';
import { describe as describeRequest, namedJobs, render, send, serialize, toRegression, type Answer, type FuzzRequest, type Json, type Rendered } from './wire.js';
// JSON text with object keys sorted: values compared whatever order jsonb gave their keys back in.
import { canonical } from '../../conformance/src/expect.js';

/*
 * Issue 18 item 7: requests generated from openapi.yaml, valid and hostile, against a real
 * server over real HTTP, on the database of this pass of the suite. Every answer must be
 * declared in openapi.yaml and valid by it (status, Content-Type, body schema, declared
 * headers: the conformance kit's validator, independent of the server's own), no answer a 5xx,
 * every error problem+json; a request the contract calls valid must not be refused, one it
 * calls malformed must get the status it calls for; /health answers within a second
 * throughout; no refused request leaves a job behind, and a batch with one broken element
 * stores all of it or none (issue 15 item 3); correct job cycles interleaved with the garbage
 * keep getting correct answers; the server's heap stays bounded. A failure prints the shrunk
 * request as a regression case for regressions.ts, which runs them as regular tests.
 *
 * RELAY_FUZZ_SEED and RELAY_FUZZ_RUNS change the seed and the number of generated requests;
 * RELAY_FUZZ_PATH (printed with a failure) replays the shrunk case alone; RELAY_FUZZ_KNOWN=1
 * also sends the request shapes of known, reported breaches of the contract.
 */

const DEFAULT_SEED = 18_07;
const DEFAULT_RUNS = 3000;
/** One correct job cycle per this many generated requests, on average. */
const CYCLE_EVERY = 20;
const HEALTH_BOUND_MS = 1000;
const HEAP_BOUND = 32e6;
/** Time given to shrinking a failure; past it the smallest case found so far is reported. */
const SHRINK_BUDGET_MS = 120_000;

const limits: Limits = {
  ...documentedLimits(),
  // Node's default --max-http-header-size, which relay does not change.
  maxHeaderBytes: 16 * 1024,
};

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer, not ${raw}`);
  return n;
}

interface ApiAnswer {
  status: number;
  body: any;
  text: string;
}

/** Requests sent by api(), the correct cycles' and the final reconciliation's. */
let apiCalls = 0;

/** JSON text sent as it is, where api() would otherwise encode a value. */
class JsonText {
  constructor(readonly text: string) {}
}

/** A correct request; an answer that breaks openapi.yaml throws. */
async function api(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiAnswer> {
  apiCalls++;
  const res = await fetch(new URL(path, base), {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : body instanceof JsonText ? body.text : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  const broken = breaches(method, path, { status: res.status, headers: res.headers, text });
  if (broken.length > 0) throw new Error(`${method} ${path.slice(0, 200)} → ${res.status}: ${broken.join('; ')}`);
  let parsed: any;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed, text };
}

const qs = (params: Record<string, string | number | undefined>) =>
  querystring.stringify(Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined)) as Record<string, string>);


const RETURNED_RUN_AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3,6}Z$/;

/**
 * Enqueue, lease, heartbeat, complete: each step's answer checked against what the contract
 * promises, payload, state and run_at (to the microsecond) included.
 */
async function runCycle(base: string, c: Cycle, queue: string): Promise<string[]> {
  const problems: string[] = [];
  const expect = (ok: boolean, what: string) => {
    if (!ok) problems.push(`correct cycle on ${queue}: ${what}`);
    return ok;
  };
  const jobs = c.jobs.map((j) => ({ ...j, queue }));
  const trace: Record<string, string> = c.traceparent ? { traceparent: c.traceparent } : {};
  if (c.batch) {
    const res = await api(base, 'POST', '/enqueue/batch', jobs, trace);
    if (!expect(res.status === 202, `enqueue/batch answered ${res.status} ${res.text.slice(0, 300)}`)) return problems;
  } else {
    for (const job of jobs) {
      const res = await api(base, 'POST', '/enqueue', job, trace);
      if (!expect(res.status === 202, `enqueue of ${JSON.stringify(job).slice(0, 300)} answered ${res.status} ${res.text.slice(0, 300)}`)) return problems;
    }
  }
  const leased = await api(base, 'GET', `/v1/next?${qs({ queue, num_jobs: 10 })}`);
  if (!expect(leased.status === 200 && Array.isArray(leased.body), `next answered ${leased.status} ${leased.text.slice(0, 300)}`)) return problems;
  const got = leased.body as any[];
  // Oldest run_at first, then enqueue order; a job without run_at is due from its enqueue, after every past run_at.
  const order = jobs
    .map((j, i) => ({ j, i, at: j.run_at === undefined ? undefined : readRunAt(j.run_at) }))
    .sort((a, b) => {
      const ka = a.at && 'ms' in a.at ? a.at.ms * 1000 + a.at.micros : Infinity;
      const kb = b.at && 'ms' in b.at ? b.at.ms * 1000 + b.at.micros : Infinity;
      return ka === kb ? a.i - b.i : ka < kb ? -1 : 1;
    })
    .map((x) => x.j.id);
  expect(canonical(got.map((j) => j.id)) === canonical(order), `next handed out ${JSON.stringify(got.map((j) => j.id))}, expected ${JSON.stringify(order)}`);
  for (const sent of jobs) {
    const job = got.find((j) => j.id === sent.id);
    if (!expect(job !== undefined, `job ${JSON.stringify(sent.id)} was not handed out`)) continue;
    const what = `job ${JSON.stringify(sent.id)}`;
    expect(job.queue === queue, `${what}: queue ${JSON.stringify(job.queue)}`);
    expect(job.timeout === sent.timeout, `${what}: timeout ${job.timeout}, sent ${sent.timeout}`);
    expect(job.max_retries === (sent.max_retries ?? 0), `${what}: max_retries ${job.max_retries}, sent ${sent.max_retries}`);
    expect(canonical(job.payload) === canonical(sent.payload), `${what}: payload ${canonical(job.payload).slice(0, 200)}, sent ${canonical(sent.payload).slice(0, 200)}`);
    if (sent.state === undefined) expect(!('state' in job), `${what}: state ${canonical(job.state).slice(0, 100)} where none was sent`);
    else expect(canonical(job.state) === canonical(sent.state), `${what}: state ${canonical(job.state).slice(0, 200)}, sent ${canonical(sent.state).slice(0, 200)}`);
    expect(job.attempt === 1, `${what}: attempt ${job.attempt}`);
    expect(job.traceparent === c.traceparent, `${what}: traceparent ${job.traceparent}, sent ${c.traceparent}`);
    expect(typeof job.run_id === 'string' && job.run_id.length > 0, `${what}: run_id ${job.run_id}`);
    if (expect(typeof job.run_at === 'string' && RETURNED_RUN_AT.test(job.run_at), `${what}: run_at ${job.run_at} is not UTC RFC 3339 to the microsecond`) && sent.run_at !== undefined) {
      const want = readRunAt(sent.run_at);
      const have = readRunAt(job.run_at);
      expect('ms' in want && 'ms' in have && want.ms === have.ms && want.micros === have.micros, `${what}: run_at ${job.run_at}, sent ${sent.run_at}`);
    }
  }
  const [first, ...rest] = got;
  if (!first) return problems;
  const beat = await api(base, 'PATCH', `/v1/heartbeat?${qs({ queue, job_id: first.id, run_id: first.run_id })}`, c.checkpoint);
  expect(beat.status === 202, `heartbeat answered ${beat.status} ${beat.text.slice(0, 300)}`);
  const done = await api(base, 'DELETE', `/v1/complete?${qs({ queue, job_id: first.id, run_id: first.run_id })}`);
  expect(done.status === 200, `complete answered ${done.status} ${done.text.slice(0, 300)}`);
  if (rest.length > 0) {
    const batch = await api(base, 'POST', '/v1/complete/batch', rest.map((j) => ({ queue, job_id: j.id, run_id: j.run_id })));
    expect(batch.status === 200 && batch.body?.completed?.length === rest.length && batch.body?.not_found?.length === 0, `complete/batch answered ${batch.status} ${batch.text.slice(0, 300)}`);
  }
  const empty = await api(base, 'GET', `/v1/next?${qs({ queue })}`);
  expect(empty.status === 204, `next after completing everything answered ${empty.status} ${empty.text.slice(0, 300)}`);
  return problems;
}

/**
 * A batch of valid jobs with one broken element, on a queue of its own: refused, it must have
 * stored none of them; accepted, all of them. What is there is found by completing every job
 * the batch named (complete removes waiting and scheduled jobs alike).
 */
async function runAtomicity(base: string, probe: AtomicityProbe, queue: string): Promise<string[]> {
  const jobs: Json[] = Array.from({ length: probe.size }, (_, i) => ({ id: `a${i}`, queue, timeout: 30 }));
  const at = probe.at % probe.size;
  const broken = 'element' in probe.change ? probe.change.element : { ...(jobs[at] as Record<string, Json>), [probe.change.property]: probe.change.value };
  jobs[at] = broken;
  const res = await api(base, 'POST', '/enqueue/batch', new JsonText(serialize(jobs)));
  const named = new Set(jobs.slice(0, at).concat(jobs.slice(at + 1)).map((j) => (j as { id: string }).id));
  const b = broken as { id?: unknown; queue?: unknown } | null;
  if (b && typeof b === 'object' && !Array.isArray(b) && b.queue === queue && typeof b.id === 'string' && nameable(queue, b.id)) named.add(b.id);
  const done = await api(base, 'POST', '/v1/complete/batch', [...named].map((id) => ({ queue, job_id: id })));
  if (done.status !== 200) return [`complete/batch after a batch with a broken element answered ${done.status} ${done.text.slice(0, 200)}`];
  const stored = (done.body.completed as Array<{ job_id: string }>).map((r) => r.job_id);
  const what = `a batch of ${probe.size} jobs whose element ${at} is ${serialize(broken).slice(0, 200)}`;
  if (res.status === 202 && stored.length !== named.size) return [`${what} was accepted, yet ${named.size - stored.length} of its ${named.size} jobs are not there`];
  if (res.status >= 400 && stored.length > 0) return [`${what} was refused (${res.status}), yet ${stored.length} of its jobs were stored: ${JSON.stringify(stored.slice(0, 10))}`];
  if (res.status !== 202 && res.status < 400) return [`${what} answered ${res.status}`];
  return [];
}

/** Updates the ledger from one answer. */
function record(ledger: Ledger, req: FuzzRequest, r: Rendered, answer: Answer): void {
  const path = r.target.split('?')[0]!;
  const { op } = r.wire.via === 'bytes' ? { op: undefined } : routeOf(r.method, path);
  const query = querystring.parse(r.target.includes('?') ? r.target.slice(r.target.indexOf('?') + 1) : '');
  const one = (name: string) => (typeof query[name] === 'string' ? (query[name] as string) : undefined);
  const named = namedJobs(req);
  if (answer.status >= 400) {
    const what = `${describeRequest(req).slice(0, 600)}\n  → ${answer.status} ${answer.text.slice(0, 200)}`;
    for (const { queue, id } of named) ledger.refused(queue, id, what);
    return;
  }
  let body: any;
  try {
    body = answer.text ? JSON.parse(answer.text) : undefined;
  } catch {
    body = undefined;
  }
  switch (op?.id) {
    case 'enqueue':
    case 'enqueueBatch':
      if (answer.status === 202) for (const { queue, id } of named) ledger.accepted(queue, id);
      break;
    case 'complete':
    case 'completeCompat':
      if (answer.status === 200 && one('queue') !== undefined && one('job_id') !== undefined) ledger.gone(one('queue')!, one('job_id')!);
      break;
    case 'completeBatch':
      for (const ref of body?.completed ?? []) ledger.gone(ref.queue, ref.job_id);
      break;
    case 'settleAndNext':
      for (const ref of body?.settled?.completed ?? []) ledger.gone(ref.queue, ref.job_id);
      for (const ref of body?.settled?.failed ?? []) if (ref.outcome === 'failed') ledger.gone(ref.queue, ref.job_id);
      break;
    case 'fail':
      if (answer.status === 202 && body?.outcome === 'failed' && one('queue') !== undefined && one('job_id') !== undefined) ledger.gone(one('queue')!, one('job_id')!);
      break;
  }
}

/** A (queue, id) that the API can name at all: anything else cannot have been stored. */
function nameable(queue: string, id: string): boolean {
  const newJob = operation('enqueue').body!.schema;
  return (
    violation(newJob.properties!.queue!, queue) === undefined &&
    violation(newJob.properties!.id!, id) === undefined &&
    inspectJson([queue, id]).unstorable === undefined &&
    Buffer.byteLength(queue) + Buffer.byteLength(id) <= limits.maxKeyBytes
  );
}

/**
 * After the traffic: every job still in the fuzz queues, and every job the traffic named,
 * held against what the answers said. Leases everything in the fuzz queues, then completes
 * every named job in batches: a job that a refused request named and no accepted one did must
 * not be there; an accepted one must be, unless the answers said it was completed or failed,
 * or it is in the failed jobs (a lease that expired).
 */
async function reconcile(base: string, ctx: FuzzContext, ledger: Ledger): Promise<{ problems: string[]; leased: number; completed: number }> {
  const problems: string[] = [];
  let leased = 0;
  for (const queue of ctx.queues) {
    for (let round = 0; round < 100; round++) {
      const res = await api(base, 'GET', `/v1/next?${qs({ queue, num_jobs: 1000 })}`);
      if (res.status === 204) break;
      if (res.status !== 200) {
        problems.push(`draining ${queue}: next answered ${res.status} ${res.text.slice(0, 200)}`);
        break;
      }
      for (const job of res.body as Array<{ queue: string; id: string }>) {
        leased++;
        const history = ledger.get(job.queue, job.id);
        if (!history?.everAccepted) {
          problems.push(`job ${JSON.stringify([job.queue, job.id])} is in the database, yet no request that named it was accepted${history?.refusedBy.length ? `; refused:\n${history.refusedBy.join('\n')}` : ''}`);
        }
      }
    }
  }
  const keys = [...ledger.keys.values()].filter((k) => nameable(k.queue, k.id));
  let completed = 0;
  for (let i = 0; i < keys.length; i += 1000) {
    const chunk = keys.slice(i, i + 1000);
    const res = await api(base, 'POST', '/v1/complete/batch', chunk.map((k) => ({ queue: k.queue, job_id: k.id })));
    if (res.status !== 200) {
      problems.push(`complete/batch of the named jobs answered ${res.status} ${res.text.slice(0, 200)}`);
      continue;
    }
    const found = new Set((res.body.completed as Array<{ queue: string; job_id: string }>).map((r) => JSON.stringify([r.queue, r.job_id])));
    completed += found.size;
    for (const k of chunk) {
      const present = found.has(JSON.stringify([k.queue, k.id]));
      if (present && !k.everAccepted) {
        problems.push(`job ${JSON.stringify([k.queue, k.id])} exists, yet every request that named it was refused:\n${k.refusedBy.join('\n')}`);
      } else if (present && k.last === 'gone') {
        problems.push(`job ${JSON.stringify([k.queue, k.id])} exists after it was completed or failed, and no later enqueue was accepted`);
      } else if (!present && k.last === 'accepted') {
        const failed = await api(base, 'GET', `/v1/failed?${qs({ queue: k.queue, job_id: k.id, limit: 1 })}`);
        if (!(failed.status === 200 && failed.body.length > 0)) problems.push(`job ${JSON.stringify([k.queue, k.id])} was accepted and is neither in the database nor in the failed jobs`);
      }
    }
  }
  return { problems, leased, completed };
}

describe(`fuzz: requests from openapi.yaml and hostile variants, over HTTP (${backend})`, function () {
  this.timeout(30 * 60_000);
  let server: ServerThread | undefined;
  let prober: HealthProber | undefined;

  after(async () => {
    await prober?.stop();
    await server?.close();
  });

  it('never a 5xx, every answer declared and every error problem+json, /health within a second, no job from a refused request, heap bounded', async () => {
    const seed = envInt('RELAY_FUZZ_SEED', DEFAULT_SEED);
    const runs = envInt('RELAY_FUZZ_RUNS', DEFAULT_RUNS);
    const path = process.env.RELAY_FUZZ_PATH || undefined;
    const ctx = fuzzContext(`fuzz-${randomUUID().slice(0, 8)}`, process.env.RELAY_FUZZ_KNOWN === '1');
    console.log(`      fuzz: seed ${seed}, ${runs} generated requests on ${backend} (RELAY_FUZZ_SEED, RELAY_FUZZ_RUNS to change)`);

    server = await ServerThread.start();
    const base = server.url;
    const host = new URL(base).host;

    // The validator compiles its schemas on first use: every operation is warmed up before the
    // heap is measured, on queues of its own (the ledger does not know what these requests did).
    const warmUp = fuzzContext(`${ctx.prefix}-warm-up`);
    for (let i = 0; i < 3; i++) {
      for (const r of fc.sample(fuzzRequest(warmUp), { seed: seed + i, numRuns: 40 })) {
        const rendered = render(r, host);
        await send(base, rendered, 15_000).catch(() => undefined);
      }
    }
    const heapBefore = await server.heap();
    prober = new HealthProber(base);
    const ledger = new Ledger();
    const statuses = new Map<number, number>();
    const verdicts = { ok: 0, refused: 0, unknown: 0 };
    let sent = 0;
    let cycles = 0;
    let atomicityProbes = 0;
    let cycleRequests = 0;
    let worstHealth = 0;
    let firstFailureAt: number | undefined;

    const started = performance.now();
    const property = fc.asyncProperty(
      fuzzRequest(ctx),
      fc.oneof({ weight: CYCLE_EVERY - 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: cycleArb() }),
      async (request, cycleCase) => {
        // Shrinking past its budget: accept every further candidate so that it ends.
        if (firstFailureAt !== undefined && performance.now() - firstFailureAt > SHRINK_BUDGET_MS) return true;
        const rendered = render(request, host);
        const verdict = judge(rendered, limits);
        verdicts[verdict.kind]++;
        const problems: string[] = [];
        let answer: Answer | undefined;
        sent++;
        try {
          answer = await send(base, rendered, 15_000);
        } catch (err) {
          problems.push(`no answer: ${(err as Error).message}`);
        }
        if (answer) {
          statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
          problems.push(...check(rendered, answer, verdict, limits));
          problems.push(...breaches(rendered.method, rendered.target, answer));
          record(ledger, request, rendered, answer);
        }
        const health = await prober!.report();
        worstHealth = Math.max(worstHealth, health.worst);
        if (health.worst > HEALTH_BOUND_MS) problems.push(`/health took ${Math.round(health.worst)} ms to answer while this request was served`);
        problems.push(...health.failures);
        if (cycleCase) {
          cycles++;
          const before = apiCalls;
          const cycleQueue = `${ctx.prefix}-cycle-${cycles}`;
          problems.push(...(await runCycle(base, cycleCase, cycleQueue).catch((err: Error) => [`correct cycle on ${cycleQueue}: ${err.message}`])));
          if (cycleCase.atomicity) {
            atomicityProbes++;
            const probeQueue = `${ctx.prefix}-atomic-${atomicityProbes}`;
            problems.push(...(await runAtomicity(base, cycleCase.atomicity, probeQueue).catch((err: Error) => [`batch atomicity on ${probeQueue}: ${err.message}`])));
          }
          cycleRequests += apiCalls - before;
        }
        if (problems.length > 0) {
          firstFailureAt ??= performance.now();
          const answered = answer ? `answer: ${answer.status} ${answer.headers['content-type'] ?? ''} ${JSON.stringify(answer.text.slice(0, 300))}` : 'no answer';
          throw new Error(`${problems.join('\n')}\n${answered}\nverdict: ${JSON.stringify(verdict.kind === 'refused' ? { ...verdict, statuses: [...verdict.statuses] } : verdict)}`);
        }
      },
    );
    const details = await fc.check(property, { seed, numRuns: runs, path, endOnFailure: false });
    const elapsed = (performance.now() - started) / 1000;

    const finalHealth = await prober.stop();
    prober = undefined;
    worstHealth = Math.max(worstHealth, finalHealth.worst);
    const settled = await reconcile(base, ctx, ledger);
    const heapAfter = await server.heap();
    const growth = heapAfter - heapBefore;

    const byStatus = [...statuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`).join(' ');
    console.log(
      `      fuzz: ${sent + cycleRequests} requests in ${elapsed.toFixed(1)} s on ${backend}, seed ${seed}: ${sent} generated (${details.numRuns} runs, ${details.numShrinks} shrinks), ${cycleRequests} in ${cycles} correct cycles and ${atomicityProbes} batches with a broken element`,
    );
    console.log(`      answers ${byStatus}; verdicts ok ${verdicts.ok}, refused ${verdicts.refused}, open ${verdicts.unknown}`);
    console.log(
      `      /health worst ${Math.round(worstHealth)} ms over ${finalHealth.count} probes; ${ledger.keys.size} jobs named, ${settled.leased} leased and ${settled.completed} completed at the end; heap ${(growth / 1e6).toFixed(1)} MB growth`,
    );

    const failures: string[] = [];
    if (details.failed) {
      const [request, cycleCase] = details.counterexample ?? [];
      failures.push(
        [
          `a request broke the contract (seed ${seed}, replay alone with RELAY_FUZZ_SEED=${seed} RELAY_FUZZ_PATH=${details.counterexamplePath} RELAY_FUZZ_RUNS=${runs}):`,
          request ? describeRequest(request as FuzzRequest, host) : '(none)',
          request ? `  as a regression case for test/fuzz/regressions.ts: ${toRegression(request as FuzzRequest, ctx.prefix)}` : '',
          cycleCase ? `  with the correct cycle ${JSON.stringify(cycleCase).slice(0, 600)}` : '',
          String((details.errorInstance as Error | null)?.message ?? details.errorInstance),
        ]
          .filter(Boolean)
          .join('\n'),
      );
    }
    failures.push(...settled.problems);
    if (worstHealth > HEALTH_BOUND_MS) failures.push(`/health took ${Math.round(worstHealth)} ms to answer`);
    if (growth > HEAP_BOUND) failures.push(`the heap grew by ${(growth / 1e6).toFixed(1)} MB over the run (bound ${HEAP_BOUND / 1e6} MB)`);
    if (failures.length > 0) throw new Error(failures.join('\n\n'));
    // The checks above would pass vacuously on a run that reached nothing.
    if (verdicts.ok === 0 || verdicts.refused === 0 || cycles === 0) throw new Error('the run sent no valid request, no refused one, or no correct cycle: the generators are broken');
  });
});
