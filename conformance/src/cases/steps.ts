import type { CaseContext } from '../case.js';
import { check, expectEqual, expectStatus, fail } from '../expect.js';

/** The steps most cases take, each with the answer the contract promises checked. */

export interface NewJob {
  id: string;
  queue: string;
  timeout: number;
  max_retries?: number;
  payload?: unknown;
  state?: unknown;
  run_at?: string;
}

export interface Job {
  id: string;
  queue: string;
  timeout: number;
  max_retries: number;
  payload: unknown;
  state?: unknown;
  run_at: string;
  attempt: number;
  run_id: string;
}

/** How a stored run_at comes back: UTC, `Z`, three to six fraction digits (openapi.yaml's RunAt). */
export const RETURNED_RUN_AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3,6}Z$/;

export async function enqueue(ctx: CaseContext, job: NewJob): Promise<void> {
  expectStatus(await ctx.api.send({ op: 'enqueue', json: job }), 202, `enqueue of ${JSON.stringify(job.id)}`);
}

export async function enqueueBatch(ctx: CaseContext, jobs: NewJob[]): Promise<void> {
  expectStatus(await ctx.api.send({ op: 'enqueueBatch', json: jobs }), 202, `enqueue/batch of ${jobs.length}`);
}

/** Leases up to n jobs (200 or 204); wait in seconds for a long poll. */
export async function next(ctx: CaseContext, queue: string, n?: number, wait?: number, op: 'next' | 'nextCompat' = 'next'): Promise<Job[]> {
  const res = await ctx.api.send({ op, query: { queue, num_jobs: n, wait }, holdMs: (wait ?? 0) * 1000 });
  expectStatus(res, [200, 204], `next on ${queue}`);
  if (res.status === 204) return [];
  check(Array.isArray(res.body) && res.body.length > 0, `next on ${queue}: a 200 with no job`);
  if (n !== undefined) check(res.body.length <= Math.max(n, 1), `next with num_jobs=${n} handed out ${res.body.length} jobs`);
  for (const job of res.body as Job[]) check(job.queue === queue, `next on ${queue} handed out a job of queue ${JSON.stringify(job.queue)}`);
  return res.body as Job[];
}

/** Leases exactly the ids given, in that order, in one `next`. */
export async function leaseIds(ctx: CaseContext, queue: string, ids: string[], n = ids.length): Promise<Job[]> {
  const jobs = await next(ctx, queue, n);
  expectEqual(
    jobs.map((j) => j.id),
    ids,
    `next (num_jobs=${n}) handed out`,
  );
  return jobs;
}

export async function expectEmpty(ctx: CaseContext, queue: string, why: string): Promise<void> {
  const res = await ctx.api.send({ op: 'next', query: { queue, num_jobs: 1000 } });
  if (res.status !== 204) fail(`${why}: next answered ${res.status}${Array.isArray(res.body) ? ` with ${JSON.stringify(res.body.map((j: Job) => j.id)).slice(0, 120)}` : ''}, expected 204`);
}

export async function heartbeat(ctx: CaseContext, job: { queue: string; id: string; run_id?: string }, state?: { value: unknown }): Promise<number> {
  const res = await ctx.api.send({ op: 'heartbeat', query: { queue: job.queue, job_id: job.id, run_id: job.run_id }, ...(state ? { json: state.value } : {}) });
  expectStatus(res, [202, 404], `heartbeat of ${JSON.stringify(job.id)}`);
  return res.status;
}

export async function complete(ctx: CaseContext, job: { queue: string; id: string; run_id?: string }): Promise<number> {
  const res = await ctx.api.send({ op: 'complete', query: { queue: job.queue, job_id: job.id, run_id: job.run_id } });
  expectStatus(res, [200, 404], `complete of ${JSON.stringify(job.id)}`);
  return res.status;
}

/** Completes every job given; each must exist. */
export async function completeAll(ctx: CaseContext, jobs: Array<{ queue: string; id: string; run_id?: string }>): Promise<void> {
  for (const job of jobs) check((await complete(ctx, job)) === 200, `complete of ${JSON.stringify(job.id)} (run ${job.run_id}): 404, the job should have been in flight`);
}

export async function failJob(ctx: CaseContext, job: { queue: string; id: string; run_id?: string }, body?: { error?: string; retry_in?: number }): Promise<{ status: number; outcome?: string; run_at?: string }> {
  const res = await ctx.api.send({ op: 'fail', query: { queue: job.queue, job_id: job.id, run_id: job.run_id }, ...(body ? { json: body } : {}) });
  expectStatus(res, [202, 404], `fail of ${JSON.stringify(job.id)}`);
  return { status: res.status, outcome: res.body?.outcome, run_at: res.body?.run_at };
}

/** What a delivered job must carry, against what was enqueued. */
export function expectDelivered(job: Job, sent: NewJob, what: string): void {
  check(job.id === sent.id && job.queue === sent.queue, `${what}: got ${JSON.stringify([job.queue, job.id])}`);
  expectEqual(job.timeout, sent.timeout, `${what}: timeout`);
  expectEqual(job.max_retries, sent.max_retries ?? 0, `${what}: max_retries`);
  expectEqual(job.payload, sent.payload ?? null, `${what}: payload`);
  if (sent.state === undefined) check(!('state' in job), `${what}: a state (${JSON.stringify(job.state)}) where none was stored`);
  else expectEqual(job.state, sent.state, `${what}: state`);
  check(RETURNED_RUN_AT.test(job.run_at), `${what}: run_at ${JSON.stringify(job.run_at)} is not UTC with three to six fraction digits`);
  check(typeof job.run_id === 'string' && job.run_id.length > 0, `${what}: no run_id`);
}
