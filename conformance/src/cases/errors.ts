import type { Case, CaseContext } from '../case.js';
import { check, expectEqual, expectStatus, fail } from '../expect.js';
import type { Request, Response } from '../http.js';
import { clip } from '../http.js';
import { enqueue, expectEmpty, failJob, heartbeat, leaseIds } from './steps.js';

/** Bad input: the status the contract calls for, as a problem, and nothing changed by it. */

/** A 400 lists what was wrong (`errors`), naming `names` somewhere in the problem when given. */
function expectBadRequest(res: Response, what: string, ...names: string[]): void {
  expectStatus(res, 400, what);
  check(Array.isArray(res.body?.errors) && res.body.errors.length > 0, `${what}: a 400 without the list of what was wrong (errors)`);
  for (const name of names) check(res.text.includes(name), `${what}: the problem does not name ${name}: ${clip(res.text)}`);
}

/** Each request, and the answer the contract calls for. */
async function refuseAll(ctx: CaseContext, requests: Array<[string, Request, number?, string?]>): Promise<void> {
  for (const [what, req, status, names] of requests) {
    const res = await ctx.api.send(req);
    if (status === undefined || status === 400) expectBadRequest(res, what, ...(names ? [names] : []));
    else expectStatus(res, status, what);
  }
}

export const errorCases: Case[] = [
  {
    name: 'bad-enqueue',
    description: 'malformed enqueues (missing, unknown, mistyped or out-of-range fields, bad JSON, bad run_at, NUL, over-long ids, a batch over maxItems) are 400 problems that store nothing',
    async run(ctx) {
      const queue = ctx.queue();
      const job = { id: 'bad', queue, timeout: 30 };
      const raw = (body: string): Request => ({ op: 'enqueue', body, headers: { 'content-type': 'application/json' } });
      await refuseAll(ctx, [
        ['no timeout', { op: 'enqueue', json: { id: 'bad', queue } }, 400, 'timeout'],
        ['an unknown field (max_retry)', { op: 'enqueue', json: { ...job, max_retry: 3 } }, 400, 'max_retry'],
        ['timeout -1', { op: 'enqueue', json: { ...job, timeout: -1 } }, 400, 'timeout'],
        ['timeout 2^31', { op: 'enqueue', json: { ...job, timeout: 2 ** 31 } }, 400, 'timeout'],
        ['timeout "30"', { op: 'enqueue', json: { ...job, timeout: '30' } }, 400, 'timeout'],
        ['timeout 1.5', { op: 'enqueue', json: { ...job, timeout: 1.5 } }, 400, 'timeout'],
        ['max_retries 2^31', { op: 'enqueue', json: { ...job, max_retries: 2 ** 31 } }, 400, 'max_retries'],
        ['an empty id', { op: 'enqueue', json: { ...job, id: '' } }, 400, 'id'],
        ['an id of 1025 characters', { op: 'enqueue', json: { ...job, id: 'x'.repeat(1025) } }, 400, 'id'],
        ['a queue of 256 characters', { op: 'enqueue', json: { ...job, queue: `${queue}${'q'.repeat(256)}` } }, 400, 'queue'],
        ['a NUL in the id', { op: 'enqueue', json: { ...job, id: 'a\u0000b' } }, 400, 'id'],
        ['a NUL in the payload', { op: 'enqueue', json: { ...job, payload: { a: 'x\u0000' } } }, 400],
        ['run_at "tomorrow"', { op: 'enqueue', json: { ...job, run_at: 'tomorrow' } }, 400, 'run_at'],
        ['run_at without an offset', { op: 'enqueue', json: { ...job, run_at: '2030-01-01T00:00:00' } }, 400, 'run_at'],
        ['run_at in year 0', { op: 'enqueue', json: { ...job, run_at: '0000-06-01T00:00:00Z' } }, 400, 'run_at'],
        ['a payload number past double (1e400)', raw(`{"id":"bad","queue":${JSON.stringify(queue)},"timeout":30,"payload":1e400}`), 400],
        ['a body that is not JSON', raw('{"id": "bad",'), 400],
        ['an array where a job belongs', { op: 'enqueue', json: [job] }, 400],
        ['no body', raw(''), 400],
        ['a body that is not application/json', { op: 'enqueue', body: JSON.stringify(job), headers: { 'content-type': 'text/plain' } }, 415],
        ['a gzip Content-Encoding', { op: 'enqueue', body: JSON.stringify(job), headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } }, 415],
        ['a batch that is not an array', { op: 'enqueueBatch', json: job }, 400],
        ['a batch over maxItems (10 001)', { op: 'enqueueBatch', json: Array.from({ length: 10_001 }, (_, i) => ({ ...job, id: `b${i}` })) }, 400],
      ]);
      await expectEmpty(ctx, queue, 'after refused enqueues');
    },
  },
  {
    name: 'bad-next',
    description: 'next without a queue, or with a num_jobs or wait that is not a finite number in range, is a 400 problem naming the parameter and leases nothing',
    async run(ctx) {
      const queue = ctx.queue();
      await enqueue(ctx, { id: 'kept', queue, timeout: 30 });
      const bad = (query: Record<string, string>): Request => ({ op: 'next', query: { queue, ...query } });
      await refuseAll(ctx, [
        ['next without a queue', { op: 'next', query: { num_jobs: 1 } }, 400, 'queue'],
        ['num_jobs=-1', bad({ num_jobs: '-1' }), 400, 'num_jobs'],
        ['num_jobs=abc', bad({ num_jobs: 'abc' }), 400, 'num_jobs'],
        ['num_jobs=2.5', bad({ num_jobs: '2.5' }), 400, 'num_jobs'],
        ['num_jobs=2147483648', bad({ num_jobs: '2147483648' }), 400, 'num_jobs'],
        ['wait=61', bad({ wait: '61' }), 400, 'wait'],
        ['wait=-1', bad({ wait: '-1' }), 400, 'wait'],
        ['wait=Infinity', bad({ wait: 'Infinity' }), 400, 'wait'],
        ['wait=NaN', bad({ wait: 'NaN' }), 400, 'wait'],
      ]);
      const jobs = await leaseIds(ctx, queue, ['kept'], 10);
      expectEqual(jobs[0]!.attempt, 1, 'attempt of a job after refused nexts');
      await ctx.api.send({ op: 'complete', query: { queue, job_id: 'kept' } });
    },
  },
  {
    name: 'bad-job-calls',
    description: 'malformed heartbeat, complete, complete/batch, fail and reschedule calls on a job in flight are 400 problems that leave it as it was',
    async run(ctx) {
      const queue = ctx.queue();
      await enqueue(ctx, { id: 'j', queue, timeout: 30, max_retries: 1, state: { v: 0 } });
      const [job] = await leaseIds(ctx, queue, ['j']);
      const ref = { queue, job_id: 'j', run_id: job!.run_id };
      await refuseAll(ctx, [
        ['a heartbeat without job_id', { op: 'heartbeat', query: { queue }, json: { v: 9 } }, 400, 'job_id'],
        ['a heartbeat whose body is not JSON', { op: 'heartbeat', query: ref, body: '{"v":', headers: { 'content-type': 'application/json' } }, 400],
        ['a heartbeat whose state has a NUL', { op: 'heartbeat', query: ref, json: { v: '\u0000' } }, 400],
        ['a complete without job_id', { op: 'complete', query: { queue } }, 400, 'job_id'],
        ['a complete/batch element without job_id', { op: 'completeBatch', json: [{ queue }] }, 400, 'job_id'],
        ['a complete/batch with an unknown field', { op: 'completeBatch', json: [{ ...ref, extra: 1 }] }, 400],
        ['a fail with retry_in -1', { op: 'fail', query: ref, json: { retry_in: -1 } }, 400, 'retry_in'],
        ['a fail with an unknown field', { op: 'fail', query: ref, json: { reason: 'x' } }, 400],
        ['a reschedule without timeout', { op: 'reschedule', json: { id: 'j', queue, run_id: job!.run_id } }, 400, 'timeout'],
        ['a reschedule with timeout -1', { op: 'reschedule', json: { id: 'j', queue, timeout: -1, run_id: job!.run_id } }, 400, 'timeout'],
      ]);
      // Still in flight in the same delivery, its state and its retry budget untouched.
      check((await heartbeat(ctx, job!)) === 202, 'the job is no longer in flight after refused calls');
      const failed = await failJob(ctx, job!, { retry_in: 0 });
      if (failed.outcome !== 'retrying') fail(`a fail after refused calls: ${failed.outcome}, expected retrying (a refused fail counted a retry)`);
      const [again] = await leaseIds(ctx, queue, ['j']);
      expectEqual(again!.state, { v: 0 }, 'the state after refused calls');
      await ctx.api.send({ op: 'complete', query: { queue, job_id: 'j' } });
    },
  },
  {
    name: 'unknown-route',
    description: 'a path the API does not have is a 404 problem, a method a path does not take a 405 problem',
    async run(ctx) {
      expectStatus(await ctx.api.send({ path: '/v1/no-such-path' }), 404, 'GET /v1/no-such-path');
      expectStatus(await ctx.api.send({ op: 'enqueue', method: 'PUT', json: { id: 'x', queue: ctx.queue(), timeout: 30 } }), 405, 'PUT /enqueue');
      await expectEmpty(ctx, ctx.queue(), 'after PUT /enqueue');
    },
  },
];
