import yaml from 'js-yaml';
import type { Case } from '../case.js';
import { check, expectEqual, expectStatus, sleep } from '../expect.js';
import { complete, completeAll, enqueue, enqueueBatch, expectDelivered, expectEmpty, heartbeat, leaseIds, next, type NewJob } from './steps.js';

/** The job cycle: enqueue, lease, complete; order, counts, long polls, the compatibility paths. */

/** An hour ahead: invisible to `next` for the whole run, whatever the two clocks say. */
const later = () => new Date(Date.now() + 3600_000).toISOString();

export const jobCases: Case[] = [
  {
    name: 'health',
    description: 'GET /health answers 200 {"status":"ok"} while the database is up',
    async run({ api }) {
      const res = await api.send({ op: 'health' });
      expectStatus(res, 200, 'GET /health');
      expectEqual(res.body.status, 'ok', 'GET /health status');
    },
  },
  {
    name: 'contract-document',
    description: 'GET /openapi.yaml and /openapi.json serve a contract with every operation this kit knows',
    async run({ api }) {
      const y = await api.send({ op: 'openapiYaml' });
      expectStatus(y, 200, 'GET /openapi.yaml');
      const doc = yaml.load(y.text) as { openapi?: string; paths?: Record<string, Record<string, { operationId?: string }>> };
      check(typeof doc?.openapi === 'string' && doc.openapi.startsWith('3.'), `GET /openapi.yaml: not an OpenAPI 3 document (openapi: ${JSON.stringify(doc?.openapi)})`);
      const served = new Set(Object.values(doc.paths ?? {}).flatMap((item) => Object.values(item ?? {}).map((op) => op?.operationId)));
      const missing = [...api.contract.operations.keys()].filter((id) => !served.has(id));
      check(missing.length === 0, `GET /openapi.yaml lacks operations: ${missing.join(', ')}`);
      const j = await api.send({ op: 'openapiJson' });
      expectStatus(j, 200, 'GET /openapi.json');
      expectEqual(Object.keys(j.body.paths ?? {}).sort(), Object.keys(doc.paths ?? {}).sort(), 'the paths of /openapi.json against /openapi.yaml');
    },
  },
  {
    name: 'enqueue-single',
    description: 'POST /enqueue 202; next hands the job out with every field as sent (run_at in UTC), attempt 1 and a run_id',
    async run(ctx) {
      const queue = ctx.queue();
      const job: NewJob = {
        id: 'invoice/1042 é',
        queue,
        timeout: 30,
        max_retries: 3,
        payload: { to: 'ada@example.com', n: [1, 2.5, -3, null, true], s: 'é💥"\\', nested: { a: { b: [] } } },
        state: { step: 0 },
        run_at: '2000-01-01T01:00:00.123456789+01:00',
      };
      await enqueue(ctx, job);
      const [got] = await leaseIds(ctx, queue, [job.id], 10);
      expectDelivered(got!, job, 'the job');
      expectEqual(got!.run_at, '2000-01-01T00:00:00.123456Z', 'run_at (to the microsecond, in UTC)');
      expectEqual(got!.attempt, 1, 'attempt of the first delivery');
      await completeAll(ctx, [got!]);
      await expectEmpty(ctx, queue, 'after completing the only job');
    },
  },
  {
    name: 'enqueue-defaults',
    description: 'a job with only id, queue and timeout comes back with max_retries 0, payload null, no state and a run_at',
    async run(ctx) {
      const queue = ctx.queue();
      const job = { id: 'd', queue, timeout: 30 };
      await enqueue(ctx, job);
      const [got] = await leaseIds(ctx, queue, ['d']);
      expectDelivered(got!, job, 'the job');
      await completeAll(ctx, [got!]);
    },
  },
  {
    name: 'enqueue-duplicate',
    description: '409 problem for an existing (queue, id), waiting or in flight, that changes nothing; the same id in another queue, or after completion, is accepted',
    async run(ctx) {
      const queue = ctx.queue();
      const other = ctx.queue('other');
      await enqueue(ctx, { id: 'dup', queue, timeout: 30, payload: 'first' });
      const again = await ctx.api.send({ op: 'enqueue', json: { id: 'dup', queue, timeout: 30, payload: 'second' } });
      expectStatus(again, 409, 'a second enqueue of a waiting job');
      await enqueue(ctx, { id: 'dup', queue: other, timeout: 30 });
      const [got] = await leaseIds(ctx, queue, ['dup']);
      expectEqual(got!.payload, 'first', 'the payload after a refused duplicate');
      expectStatus(await ctx.api.send({ op: 'enqueue', json: { id: 'dup', queue, timeout: 30 } }), 409, 'an enqueue of a job in flight');
      await completeAll(ctx, [got!]);
      // The singleton pattern: a finished id may be enqueued again.
      await enqueue(ctx, { id: 'dup', queue, timeout: 30, payload: 'third' });
      const [third] = await leaseIds(ctx, queue, ['dup']);
      expectEqual(third!.payload, 'third', 'the payload of the id enqueued again');
      await completeAll(ctx, [third!, ...(await leaseIds(ctx, other, ['dup']))]);
    },
  },
  {
    name: 'enqueue-batch',
    description: 'POST /enqueue/batch 202 (an empty one too): array order kept, existing and repeated ids dropped silently, the first occurrence wins',
    async run(ctx) {
      const queue = ctx.queue();
      await enqueue(ctx, { id: 'b', queue, timeout: 30, payload: 'old' });
      await enqueueBatch(ctx, [
        { id: 'a', queue, timeout: 30, payload: 'a1' },
        { id: 'b', queue, timeout: 30, payload: 'new' },
        { id: 'c', queue, timeout: 30, payload: 'c1', max_retries: -1, state: ['s'] },
        { id: 'a', queue, timeout: 30, payload: 'a2' },
      ]);
      await enqueueBatch(ctx, []);
      const jobs = await leaseIds(ctx, queue, ['b', 'a', 'c'], 10);
      expectEqual(
        jobs.map((j) => j.payload),
        ['old', 'a1', 'c1'],
        'the payloads (the existing job kept, the first of a repeated id)',
      );
      expectDelivered(jobs[2]!, { id: 'c', queue, timeout: 30, payload: 'c1', max_retries: -1, state: ['s'] }, 'a job of the batch');
      await completeAll(ctx, jobs);
    },
  },
  {
    name: 'enqueue-batch-atomic',
    description: 'a batch with one malformed element is a 400 problem that stores none of it',
    async run(ctx) {
      const queue = ctx.queue();
      const res = await ctx.api.send({
        op: 'enqueueBatch',
        json: [
          { id: 'x', queue, timeout: 30 },
          { id: 'y', queue, timeout: 30 },
          { id: 'z', queue, timeout: 'soon' },
        ],
      });
      expectStatus(res, 400, 'a batch with a malformed element');
      await expectEmpty(ctx, queue, 'after a refused batch');
    },
  },
  {
    name: 'run-at',
    description: 'oldest run_at first; a job whose run_at is ahead is not handed out; run_at in any offset comes back in UTC',
    async run(ctx) {
      const queue = ctx.queue();
      await enqueue(ctx, { id: 'now', queue, timeout: 30 });
      await enqueue(ctx, { id: 'past', queue, timeout: 30, run_at: '1999-12-31T20:00:00-04:00' });
      await enqueue(ctx, { id: 'later', queue, timeout: 30, run_at: later() });
      const jobs = await leaseIds(ctx, queue, ['past', 'now'], 10);
      expectEqual(jobs[0]!.run_at, '2000-01-01T00:00:00.000Z', 'run_at of a job enqueued with an offset');
      await expectEmpty(ctx, queue, 'with only a job whose run_at is an hour ahead');
      await completeAll(ctx, jobs);
      check((await complete(ctx, { queue, id: 'later' })) === 200, 'complete of a scheduled job: 404');
    },
  },
  {
    name: 'fifo',
    description: 'jobs enqueued one by one, or in a batch, without run_at are handed out in enqueue order, across several nexts',
    async run(ctx) {
      const queue = ctx.queue();
      const ids = ['f0', 'f1', 'f2', 'f3', 'f4', 'f5'];
      for (const id of ids) await enqueue(ctx, { id, queue, timeout: 30 });
      await enqueueBatch(
        ctx,
        ['b0', 'b1', 'b2'].map((id) => ({ id, queue, timeout: 30 })),
      );
      const first = await leaseIds(ctx, queue, ['f0', 'f1'], 2);
      const second = await leaseIds(ctx, queue, ['f2'], 1);
      const rest = await leaseIds(ctx, queue, ['f3', 'f4', 'f5', 'b0', 'b1', 'b2'], 100);
      await completeAll(ctx, [...first, ...second, ...rest]);
    },
  },
  {
    name: 'next-count',
    description: 'num_jobs: 1 by default, "up to" (a count over the server maximum, as clients send, is no 400), 0 is a 204 that leases nothing',
    async run(ctx) {
      const queue = ctx.queue();
      await enqueueBatch(
        ctx,
        ['n0', 'n1', 'n2', 'n3', 'n4'].map((id) => ({ id, queue, timeout: 30 })),
      );
      const one = await leaseIds(ctx, queue, ['n0'], undefined);
      const none = await ctx.api.send({ op: 'next', query: { queue, num_jobs: 0 } });
      expectStatus(none, 204, 'next with num_jobs=0');
      const two = await leaseIds(ctx, queue, ['n1', 'n2'], 2);
      const many = await ctx.api.send({ op: 'next', query: { queue, num_jobs: 1100 } });
      expectStatus(many, 200, 'next with num_jobs=1100');
      expectEqual(
        many.body.map((j: { id: string }) => j.id),
        ['n3', 'n4'],
        'next with num_jobs=1100 handed out',
      );
      await expectEmpty(ctx, queue, 'after leasing every job');
      await completeAll(ctx, [...one, ...two, ...many.body]);
    },
  },
  {
    name: 'next-exclusive',
    description: 'concurrent nexts never hand out one job twice',
    async run(ctx) {
      const queue = ctx.queue();
      const ids = ['e0', 'e1', 'e2', 'e3', 'e4', 'e5'];
      await enqueueBatch(
        ctx,
        ids.map((id) => ({ id, queue, timeout: 30 })),
      );
      const answers = await Promise.all(Array.from({ length: 10 }, () => next(ctx, queue, 1)));
      const got = answers.flat();
      expectEqual(got.map((j) => j.id).sort(), ids, 'the jobs handed out to 10 concurrent nexts');
      await completeAll(ctx, got);
    },
  },
  {
    name: 'long-poll',
    description: 'next with wait holds the request until a job arrives (answered at once then), or answers 204 once wait has passed',
    async run(ctx) {
      const queue = ctx.queue();
      const started = performance.now();
      const empty = await ctx.api.send({ op: 'next', query: { queue, wait: 1 }, holdMs: 1000 });
      const held = performance.now() - started;
      expectStatus(empty, 204, 'next with wait=1 on an empty queue');
      check(held >= 900, `next with wait=1 on an empty queue answered after ${Math.round(held)} ms, before the wait was over`);

      const polling = next(ctx, queue, 1, 20);
      const pollStarted = performance.now();
      await sleep(300);
      await enqueue(ctx, { id: 'woken', queue, timeout: 30 });
      const jobs = await polling;
      const waited = performance.now() - pollStarted;
      expectEqual(
        jobs.map((j) => j.id),
        ['woken'],
        'the long poll (wait=20) handed out',
      );
      check(waited < 10_000, `the long poll answered ${Math.round(waited)} ms after it began, though a job arrived after 300 ms`);
      await completeAll(ctx, jobs);
    },
  },
  {
    name: 'compat-paths',
    description: 'the relay-rs paths /next, /heartbeat and /complete behave as their /v1 paths',
    async run(ctx) {
      const queue = ctx.queue();
      await enqueue(ctx, { id: 'c', queue, timeout: 30 });
      const [job] = await next(ctx, queue, 1, undefined, 'nextCompat');
      check(job?.id === 'c', 'GET /next handed out no job');
      expectStatus(await ctx.api.send({ op: 'heartbeatCompat', query: { queue, job_id: 'c', run_id: job.run_id }, json: { at: 1 } }), 202, 'PATCH /heartbeat');
      expectStatus(await ctx.api.send({ op: 'completeCompat', query: { queue, job_id: 'c', run_id: job.run_id } }), 200, 'DELETE /complete');
      expectStatus(await ctx.api.send({ op: 'completeCompat', query: { queue, job_id: 'c' } }), 404, 'DELETE /complete of a completed job');
      const empty = await ctx.api.send({ op: 'nextCompat', query: { queue } });
      expectStatus(empty, 204, 'GET /next on an empty queue');
    },
  },
  {
    name: 'client-forms',
    description: 'what existing Go and Rust clients send: Content-Type: application/json with an empty body (no body: state kept), num_jobs over the maximum',
    async run(ctx) {
      const queue = ctx.queue();
      await enqueue(ctx, { id: 'g', queue, timeout: 30, max_retries: 5, state: { kept: true } });
      const json = { 'content-type': 'application/json' };
      const leased = await ctx.api.send({ op: 'next', query: { queue, num_jobs: 1100 }, headers: json });
      expectStatus(leased, 200, 'next with num_jobs=1100 and Content-Type: application/json');
      const job = leased.body[0];
      const beat = await ctx.api.send({ op: 'heartbeat', query: { queue, job_id: 'g', run_id: job.run_id }, headers: json, body: '' });
      expectStatus(beat, 202, 'a heartbeat with Content-Type: application/json and an empty body');
      const failed = await ctx.api.send({ op: 'fail', query: { queue, job_id: 'g', run_id: job.run_id }, headers: json, body: '' });
      expectStatus(failed, 202, 'a fail with Content-Type: application/json and an empty body');
      expectEqual(failed.body.outcome, 'retrying', 'the outcome of a fail with retries left');
      // The default backoff of a first failure is a second or so; it is waited for, not assumed.
      const [again] = await next(ctx, queue, 1, 10);
      check(again !== undefined, 'the failed job did not come back');
      expectEqual(again.state, { kept: true }, 'the state after a heartbeat with an empty body');
      const done = await ctx.api.send({ op: 'complete', query: { queue, job_id: 'g', run_id: again.run_id }, headers: json, body: '' });
      expectStatus(done, 200, 'a complete with Content-Type: application/json and an empty body');
      check((await heartbeat(ctx, { queue, id: 'g' })) === 404, 'a heartbeat of a completed job: 202');
    },
  },
];
