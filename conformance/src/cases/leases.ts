import type { Case, CaseContext } from '../case.js';
import { check, eventually, expectEqual, expectStatus } from '../expect.js';
import { complete, completeAll, enqueue, expectEmpty, failJob, heartbeat, leaseIds, next, type Job } from './steps.js';

/** Leases: heartbeats and state, reschedule, complete, fail, expiry, retries and run_id fencing. */

/** Fails the job at once (retry_in 0) and leases it again: the next delivery, to see what it kept. */
async function redeliver(ctx: CaseContext, job: Job): Promise<Job> {
  const failed = await failJob(ctx, job, { retry_in: 0 });
  check(failed.status === 202 && failed.outcome === 'retrying', `fail with retry_in 0: ${failed.status} ${failed.outcome ?? ''}, expected 202 retrying`);
  const [again] = await leaseIds(ctx, job.queue, [job.id]);
  check(again!.run_id !== job.run_id, `the next delivery kept run_id ${job.run_id}`);
  expectEqual(again!.attempt, job.attempt + 1, 'attempt of the next delivery');
  return again!;
}

/** The failed jobs kept for one id, newest first (GET /v1/failed). */
async function failures(ctx: CaseContext, queue: string, id: string): Promise<Array<Record<string, any>>> {
  const res = await ctx.api.send({ op: 'listFailed', query: { queue, job_id: id } });
  expectStatus(res, 200, 'GET /v1/failed');
  return res.body;
}

/** Removes the failed jobs a case left, where the server lets the kit (its operations API, an admin token). */
async function purgeFailed(ctx: CaseContext, queue: string): Promise<void> {
  if (!ctx.features.has('operations')) return;
  expectStatus(await ctx.api.send({ op: 'purgeFailedJobs', params: { queue } }), 200, `DELETE /v1/queues/${queue}/failed`);
}

export const leaseCases: Case[] = [
  {
    name: 'heartbeat-state',
    description: 'a heartbeat body replaces the state the next delivery gets; no body keeps it; null clears it',
    async run(ctx) {
      const queue = ctx.queue();
      await enqueue(ctx, { id: 'h', queue, timeout: 30, max_retries: 5, state: { v: 0 } });
      let [job] = await leaseIds(ctx, queue, ['h']);
      expectEqual(job!.state, { v: 0 }, 'the state enqueued');
      check((await heartbeat(ctx, job!, { value: { v: 1, list: ['é', 2] } })) === 202, 'a heartbeat of a job in flight: 404');
      check((await heartbeat(ctx, job!)) === 202, 'a heartbeat without a body: 404');
      job = await redeliver(ctx, job!);
      expectEqual(job.state, { v: 1, list: ['é', 2] }, 'the state after a heartbeat with a body, then one without');
      check((await heartbeat(ctx, job, { value: 'a string is JSON too' })) === 202, 'a heartbeat with a JSON string: 404');
      job = await redeliver(ctx, job);
      expectEqual(job.state, 'a string is JSON too', 'the state after a heartbeat with a JSON string');
      check((await heartbeat(ctx, job, { value: null })) === 202, 'a heartbeat with null: 404');
      job = await redeliver(ctx, job);
      check(!('state' in job), `the state after a heartbeat with null: ${JSON.stringify(job.state)}, expected none`);
      await completeAll(ctx, [job]);
    },
  },
  {
    name: 'heartbeat-not-in-flight',
    description: 'a heartbeat of a job that does not exist, or waits, is a 404 problem',
    async run(ctx) {
      const queue = ctx.queue();
      check((await heartbeat(ctx, { queue, id: 'nobody' })) === 404, 'a heartbeat of a job that does not exist: 202');
      await enqueue(ctx, { id: 'w', queue, timeout: 30 });
      check((await heartbeat(ctx, { queue, id: 'w' }, { value: 1 })) === 404, 'a heartbeat of a waiting job: 202');
      const [job] = await leaseIds(ctx, queue, ['w']);
      check(!('state' in job!), 'a refused heartbeat stored a state');
      await completeAll(ctx, [job!]);
    },
  },
  {
    name: 'reschedule',
    description: 'POST /reschedule releases a job in flight with new timeout, retries, payload, run_at and state (absent: cleared); 404 when not in flight',
    async run(ctx) {
      const queue = ctx.queue();
      await enqueue(ctx, { id: 'r', queue, timeout: 30, max_retries: 1, payload: 'p1', state: 's1' });
      const [job] = await leaseIds(ctx, queue, ['r']);
      const res = await ctx.api.send({ op: 'reschedule', json: { id: 'r', queue, timeout: 45, max_retries: 2, payload: 'p2', run_id: job!.run_id } });
      expectStatus(res, 202, 'reschedule of a job in flight');
      check((await heartbeat(ctx, job!)) === 404, 'a heartbeat of the delivery a reschedule ended: 202');
      const [again] = await leaseIds(ctx, queue, ['r']);
      expectEqual([again!.timeout, again!.max_retries, again!.payload], [45, 2, 'p2'], 'timeout, max_retries and payload after reschedule');
      check(!('state' in again!), `the state after a reschedule without one: ${JSON.stringify(again!.state)}`);
      check(again!.run_id !== job!.run_id, 'the delivery after a reschedule kept its run_id');
      const ahead = new Date(Date.now() + 3600_000).toISOString();
      expectStatus(await ctx.api.send({ op: 'reschedule', json: { id: 'r', queue, timeout: 30, state: { s: 3 }, run_at: ahead } }), 202, 'reschedule to an hour ahead');
      await expectEmpty(ctx, queue, 'after a reschedule to an hour ahead');
      expectStatus(await ctx.api.send({ op: 'reschedule', json: { id: 'r', queue, timeout: 30 } }), 404, 'reschedule of a job that is not in flight');
      expectStatus(await ctx.api.send({ op: 'reschedule', json: { id: 'nobody', queue, timeout: 30 } }), 404, 'reschedule of a job that does not exist');
      check((await complete(ctx, { queue, id: 'r' })) === 200, 'complete of the rescheduled job: 404');
    },
  },
  {
    name: 'complete',
    description: 'DELETE /v1/complete 200 removes the job; again, or for a job that never was, a 404 problem',
    async run(ctx) {
      const queue = ctx.queue();
      await enqueue(ctx, { id: 'c', queue, timeout: 30 });
      const [job] = await leaseIds(ctx, queue, ['c']);
      check((await complete(ctx, job!)) === 200, 'complete of a job in flight: 404');
      check((await complete(ctx, job!)) === 404, 'a second complete: 200');
      check((await complete(ctx, { queue, id: 'never' })) === 404, 'complete of a job that never existed: 200');
      await expectEmpty(ctx, queue, 'after complete');
    },
  },
  {
    name: 'complete-batch',
    description: 'POST /v1/complete/batch 200 names the jobs completed and those not found; an empty batch is a 200',
    async run(ctx) {
      const queue = ctx.queue();
      for (const id of ['a', 'b', 'c']) await enqueue(ctx, { id, queue, timeout: 30 });
      const [a, b, c] = await leaseIds(ctx, queue, ['a', 'b', 'c']);
      const res = await ctx.api.send({
        op: 'completeBatch',
        json: [
          { queue, job_id: 'a', run_id: a!.run_id },
          { queue, job_id: 'b' },
          { queue, job_id: 'zz' },
        ],
      });
      expectStatus(res, 200, 'complete/batch');
      const ids = (refs: Array<{ job_id: string }>) => refs.map((r) => r.job_id).sort();
      expectEqual(ids(res.body.completed), ['a', 'b'], 'completed');
      expectEqual(ids(res.body.not_found), ['zz'], 'not_found');
      check((await heartbeat(ctx, c!)) === 202, 'a job left out of complete/batch is no longer in flight');
      check((await heartbeat(ctx, b!)) === 404, 'a job completed by complete/batch is still in flight');
      const empty = await ctx.api.send({ op: 'completeBatch', json: [] });
      expectStatus(empty, 200, 'an empty complete/batch');
      expectEqual(empty.body, { completed: [], not_found: [] }, 'an empty complete/batch');
      await completeAll(ctx, [c!]);
    },
  },
  {
    name: 'fail-retries',
    description: 'POST /v1/fail counts a retry and brings the job back with its state; once retries are used up the job fails, is never handed out again, and is kept with the reason',
    async run(ctx) {
      const queue = ctx.queue();
      await enqueue(ctx, { id: 'f', queue, timeout: 30, max_retries: 1, payload: { n: 1 }, state: { s: 1 } });
      const [job] = await leaseIds(ctx, queue, ['f']);
      const again = await redeliver(ctx, job!);
      expectEqual(again.state, { s: 1 }, 'the state after fail');
      const last = await failJob(ctx, again, { error: 'SMTP 451' });
      check(last.status === 202 && last.outcome === 'failed', `fail with no retry left: ${last.status} ${last.outcome ?? ''}, expected 202 failed`);
      await expectEmpty(ctx, queue, 'after the job failed');
      const [kept] = await failures(ctx, queue, 'f');
      check(kept !== undefined, 'the failed job is not among the failed jobs');
      expectEqual([kept.reason, kept.attempts, kept.payload, kept.state], ['SMTP 451', 2, { n: 1 }, { s: 1 }], 'reason, attempts, payload and state of the failed job');
      check((await failJob(ctx, { queue, id: 'nobody' })).status === 404, 'fail of a job that does not exist: 202');
      await purgeFailed(ctx, queue);
    },
  },
  {
    name: 'lease-expiry',
    description: 'a job whose lease expires is handed out again with a new run_id, its last state and attempt 2; calls with the old run_id are 404s and change nothing',
    async run(ctx) {
      const queue = ctx.queue();
      // The shortest lease the contract allows with time to act on it; retried forever, so
      // that a late step meets the job again rather than a failed one.
      await enqueue(ctx, { id: 'x', queue, timeout: 1, max_retries: -1, payload: 'p', state: { v: 0 } });
      const [first] = await leaseIds(ctx, queue, ['x']);
      check((await heartbeat(ctx, first!, { value: { v: 1 } })) === 202, 'a heartbeat within the lease: 404');
      const second = await eventually(async () => (await next(ctx, queue, 1))[0], ctx.settings.redeliveryTimeoutMs, 'the job whose lease expired was not handed out again');
      check(second.run_id !== first!.run_id, `the delivery after an expiry kept run_id ${first!.run_id}`);
      expectEqual([second.attempt, second.payload, second.state], [2, 'p', { v: 1 }], 'attempt, payload and state after an expiry');
      // Fencing: the first worker's calls must not touch the second delivery.
      check((await heartbeat(ctx, first!, { value: 'stale' })) === 404, 'a heartbeat with the old run_id: 202');
      check((await complete(ctx, first!)) === 404, 'complete with the old run_id: 200');
      check((await failJob(ctx, first!, { error: 'stale' })).status === 404, 'fail with the old run_id: 202');
      expectStatus(await ctx.api.send({ op: 'reschedule', json: { id: 'x', queue, timeout: 30, run_id: first!.run_id } }), 404, 'reschedule with the old run_id');
      // The job is still there, unchanged: in this delivery, or (its one-second lease over) the next.
      let holder: Job = second;
      if ((await heartbeat(ctx, second)) === 404) {
        holder = await eventually(async () => (await next(ctx, queue, 1))[0], ctx.settings.redeliveryTimeoutMs, 'the job was lost after the calls with the old run_id');
        check(holder.run_id !== first!.run_id && holder.run_id !== second.run_id, 'a third delivery with an old run_id');
      }
      expectEqual([holder.payload, holder.state], ['p', { v: 1 }], 'payload and state after the calls with the old run_id');
      check((await complete(ctx, holder)) === 200, 'complete of the live delivery: 404');
    },
  },
  {
    name: 'lease-expiry-failed',
    description: 'a job whose lease expires with no retry left fails: never handed out again, kept with its state and the reason',
    async run(ctx) {
      const queue = ctx.queue();
      await enqueue(ctx, { id: 'y', queue, timeout: 1, max_retries: 1, state: { v: 0 } });
      const [first] = await leaseIds(ctx, queue, ['y']);
      check((await heartbeat(ctx, first!, { value: { v: 1 } })) === 202, 'a heartbeat within the lease: 404');
      const second = await eventually(async () => (await next(ctx, queue, 1))[0], ctx.settings.redeliveryTimeoutMs, 'the job whose lease expired with a retry left was not handed out again');
      expectEqual([second.attempt, second.state], [2, { v: 1 }], 'attempt and state after the first expiry');
      const [kept] = await eventually(
        async () => {
          const list = await failures(ctx, queue, 'y');
          return list.length > 0 ? list : undefined;
        },
        ctx.settings.redeliveryTimeoutMs,
        'the job whose lease expired with no retry left is not among the failed jobs',
      );
      expectEqual([kept!.attempts, kept!.state], [2, { v: 1 }], 'attempts and state of the failed job');
      check(typeof kept!.reason === 'string' && kept!.reason.length > 0, 'the failed job has no reason');
      await expectEmpty(ctx, queue, 'after the job failed');
      check((await heartbeat(ctx, second)) === 404, 'a heartbeat of a failed job: 202');
      await purgeFailed(ctx, queue);
    },
  },
];
