import { complete, enqueueBatch, next, sleep, type JobInput } from './relay.js';

/**
 * Consumers that loop next + complete over real HTTP, many at once, and record everything
 * they saw, so that a test can check delivery counts afterwards instead of failing halfway
 * through while other consumers are still running.
 */

export interface ConsumeOptions {
  /** How many consumers run at once. */
  consumers: number;
  /** Consumer i talks to baseUrls[i % baseUrls.length]. */
  baseUrls: string[];
  /** num_jobs that consumer i asks for on its round-th call. */
  numJobs: (consumer: number, round: number) => number;
  /** Retry a 429 (after its Retry-After, capped to retryDelayMs) instead of recording a failure. */
  retry429?: boolean;
  retryDelayMs?: number;
  /** Stop after this long even if the queue is not empty. */
  deadlineMs?: number;
  /** Called after every batch a consumer received (for faults injected mid-run). */
  onBatch?: (total: number) => void | Promise<void>;
  /** On a 204, poll again (after emptyDelayMs) while this says so; default: stop at the first 204. */
  keepGoing?: (tally: Tally) => boolean | Promise<boolean>;
  emptyDelayMs?: number;
  /** Lease only: never complete (to let every lease expire). */
  skipComplete?: boolean;
}

export interface Tally {
  /** job id -> the attempt numbers it was delivered with, in order. */
  deliveries: Map<string, number[]>;
  /** Responses that were not what the protocol allows, as "METHOD status detail". */
  unexpected: string[];
  /** Batches larger than the num_jobs asked for. */
  overLimit: Array<{ asked: number; got: number }>;
  /** 429 answers seen (and retried), by operation. */
  retried: { next: number; complete: number };
  /** The most 429 answers one operation got in a row before it went through. */
  maxConsecutive429: number;
  /** Jobs completed (complete answered 200, or 404 after a 429 that went through). */
  completed: Set<string>;
  /** complete answering 404 right after a 429 on the same job (the first try went through). */
  completeGoneAfterRetry: number;
  nextCalls: number;
}

export function enqueueJobs(queue: string, count: number, extra: Partial<JobInput> = {}, baseUrl?: string) {
  const jobs = Array.from({ length: count }, (_, i) => ({ id: `job-${i}`, queue, timeout: 60, payload: { i }, ...extra }));
  return enqueueBatch(jobs, baseUrl).then((res) => {
    if (res.status !== 202) throw new Error(`batch enqueue answered ${res.status}: ${res.text}`);
    return jobs.map((j) => j.id);
  });
}

export async function consume(queue: string, options: ConsumeOptions): Promise<Tally> {
  const tally: Tally = {
    deliveries: new Map(),
    unexpected: [],
    overLimit: [],
    retried: { next: 0, complete: 0 },
    maxConsecutive429: 0,
    completed: new Set(),
    completeGoneAfterRetry: 0,
    nextCalls: 0,
  };
  const deadline = Date.now() + (options.deadlineMs ?? 20_000);
  const delay = (res: { headers: Headers }) =>
    sleep(Math.min(Number(res.headers.get('retry-after') ?? 1) * 1000, options.retryDelayMs ?? 100));
  let total = 0;

  const consumer = async (i: number) => {
    const baseUrl = options.baseUrls[i % options.baseUrls.length]!;
    let streak = 0;
    const saw429 = () => (tally.maxConsecutive429 = Math.max(tally.maxConsecutive429, ++streak));
    for (let round = 0; Date.now() < deadline; round++) {
      const asked = options.numJobs(i, round);
      const res = await next(queue, asked, baseUrl);
      tally.nextCalls++;
      if (res.status === 429 && options.retry429) {
        tally.retried.next++;
        saw429();
        await delay(res);
        continue;
      }
      streak = 0;
      if (res.status === 204) {
        if (!(await options.keepGoing?.(tally))) return;
        await sleep(options.emptyDelayMs ?? 20);
        continue;
      }
      if (res.status !== 200) {
        tally.unexpected.push(`next ${res.status} ${res.text}`);
        return;
      }
      const jobs = res.body as Array<{ id: string; attempt: number; run_id: string }>;
      if (jobs.length > asked || jobs.length === 0) tally.overLimit.push({ asked, got: jobs.length });
      for (const job of jobs) {
        const seen = tally.deliveries.get(job.id) ?? [];
        seen.push(job.attempt);
        tally.deliveries.set(job.id, seen);
      }
      total += jobs.length;
      await options.onBatch?.(total);
      for (const job of options.skipComplete ? [] : jobs) {
        let after429 = false;
        streak = 0;
        for (;;) {
          const done = await complete(queue, job.id, job.run_id, baseUrl);
          if (done.status === 200) {
            tally.completed.add(job.id);
            break;
          }
          if (done.status === 429 && options.retry429 && Date.now() < deadline) {
            tally.retried.complete++;
            saw429();
            after429 = true;
            await delay(done);
            continue;
          }
          if (done.status === 404 && after429) {
            tally.completeGoneAfterRetry++;
            tally.completed.add(job.id);
            break;
          }
          tally.unexpected.push(`complete ${done.status} ${done.text}`);
          break;
        }
      }
    }
  };

  await Promise.all(Array.from({ length: options.consumers }, (_, i) => consumer(i)));
  return tally;
}

/** The ids delivered a number of times other than once. */
export function notExactlyOnce(ids: string[], tally: Tally): Array<{ id: string; deliveries: number }> {
  const wrong: Array<{ id: string; deliveries: number }> = [];
  for (const id of ids) {
    const n = tally.deliveries.get(id)?.length ?? 0;
    if (n !== 1) wrong.push({ id, deliveries: n });
  }
  for (const [id, seen] of tally.deliveries) if (!ids.includes(id)) wrong.push({ id, deliveries: seen.length });
  return wrong;
}
