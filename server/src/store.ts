import type { Database, Queryable } from './db/index.js';
import { Coalescer } from './coalescer.js';
import { JobExistsError, JobNotFoundError, ServiceUnavailableError, StorageUnavailableError, toRelayError, withoutStack, type RelayError } from './errors.js';
import type { HandOff } from './hand-off.js';
import { noJobEvents, type JobEvents } from './job-events.js';
import { answerFor, asKeyTaken, keyId, KeyTakenError, possibleAnswers, type Idempotency, type IdempotencyKey } from './idempotency.js';
import { checkJobKey } from './job-rules.js';
import type { CompleteBatchResult, Delivery, FailResult, FailedJob, JobRef, NewJob, RescheduleRequest, Settled, Settlement, StateUpdate } from './jobs.js';
import { deleteJobs, deleteJobsKeyed, type RemovedJob } from './sql/complete.js';
import { insertJobs, insertJobsLeasing, insertJobsLeasingKeyed } from './sql/enqueue.js';
import { failJob } from './sql/fail.js';
import { listFailedJobs } from './sql/failed-jobs.js';
import { renewLease } from './sql/heartbeat.js';
import { ping } from './sql/ping.js';
import { reapExpiredLeases } from './sql/reap.js';
import { rescheduleJob } from './sql/reschedule.js';
import type { KeyedItemAnswers } from './sql/idempotency.js';
import { json, stateParam } from './sql/rows.js';
import { formatTimestamp, parseRfc3339 } from './time.js';

/**
 * The job operations of the API, over the statements of sql/: what each request means for
 * the database, the checks that must come before a statement, and who must hear of a change.
 * Every operation is one statement, atomic on its own.
 */

/** Told which queues just got jobs a `next` could take (to wake long polls). */
export type AvailabilityListener = (queues: string[]) => void;

// Single enqueues and completes that arrive together share one statement (see Coalescer). A
// shared statement that fails is retried per request, unless the database is unavailable:
// then every request would fail alike, and retrying each would only add load.
const COALESCE_OPTIONS = {
  maxBatch: 1000,
  maxConcurrent: 2,
  isolateOn: (err: unknown) => !(toRelayError(err) instanceof StorageUnavailableError),
};

const REAP_BATCH = 1000;

const key = (...parts: Array<string | null>) => JSON.stringify(parts);

/** The job with its run_at (if any) in the canonical UTC text; throws a 400 naming path. */
function withStoredRunAt<T extends NewJob>(job: T, path: string): T {
  return job.run_at === undefined ? job : { ...job, run_at: parseRfc3339(job.run_at, path) };
}

/** A job as stored: with the trace context of the request that enqueued it, if it had one. */
type TracedJob = NewJob & { traceparent?: string };

function withTrace(job: NewJob, traceparent: string | undefined): TracedJob {
  return traceparent === undefined ? job : { ...job, traceparent };
}

export interface StoreOptions {
  onAvailable?: AvailabilityListener;
  /** Requests waiting for jobs, to which a single enqueue may hand its job at once. */
  handOff?: HandOff;
  /** Where the answers of requests with an Idempotency-Key are remembered. */
  idempotency?: Idempotency;
  /** Whether concurrent single enqueues and completes share statements. Default true. */
  coalesce?: boolean;
  /** Told of each outcome (metrics). */
  events?: JobEvents;
}

/** An operation's outcome for one request: its result, or the error it answers. */
type Outcome<T> = { result: T } | { error: RelayError };

function unwrap<T>(outcome: Outcome<T>): T {
  if ('error' in outcome) throw outcome.error;
  return outcome.result;
}

/** Each request its own statement: what the coalescer is measured against. */
function alone<I, O>(runBatch: (items: I[]) => Promise<Array<O | Error>>): { submit(item: I): Promise<O> } {
  return {
    async submit(item) {
      const [result] = await runBatch([item]);
      if (result instanceof Error) throw result;
      return result as O;
    },
  };
}

/**
 * For each reference, whether it removed its job, given the jobs removed. A job listed twice
 * counts for the first reference that matches it (any run_id, or the job's own); the keyed
 * statement (sql/complete.ts) remembers its answers by the same rule.
 */
function removedBy(refs: JobRef[], rows: RemovedJob[]): boolean[] {
  const removed = new Map(rows.map((r) => [key(r.queue, r.id), r.run_id]));
  return refs.map((ref) => {
    const k = key(ref.queue, ref.job_id);
    if (!removed.has(k)) return false;
    if (ref.run_id !== undefined && ref.run_id !== removed.get(k)) return false;
    removed.delete(k);
    return true;
  });
}

interface Keyed<T> {
  item: T;
  idem: IdempotencyKey | undefined;
}

/**
 * Runs a shared statement's items; when some carry keys that were taken already (resent
 * requests), those are answered with their KeyTakenError (the route replays their first answer)
 * and the others run again without them, instead of each alone.
 */
async function withoutTakenKeys<I, O>(items: Array<Keyed<I>>, run: (items: Array<Keyed<I>>) => Promise<Array<O | Error>>): Promise<Array<O | Error>> {
  try {
    return await run(items);
  } catch (err) {
    if (!(err instanceof KeyTakenError) || items.length === 1) throw err;
    const isTaken = (i: Keyed<I>) => i.idem !== undefined && err.taken.has(keyId(i.idem));
    const rest = items.filter((i) => !isTaken(i));
    if (rest.length === items.length) throw err;
    const results = rest.length === 0 ? [] : await withoutTakenKeys(rest, run);
    let next = 0;
    return items.map((i) => (isTaken(i) ? new KeyTakenError(new Set([keyId(i.idem!)])) : results[next++]!));
  }
}

interface FailOptions {
  runId?: string;
  error?: string;
  retryIn?: number;
}

/** Fails an in-flight job with the fail statement; undefined when it is not in flight (or, with runId, not in that delivery). */
async function failOne(q: Queryable, queue: string, id: string, options: FailOptions): Promise<FailResult | undefined> {
  const row = await failJob(q, {
    queue,
    id,
    runId: options.runId ?? null,
    reason: options.error ?? 'failed by worker',
    retryInSeconds: options.retryIn ?? null,
  });
  if (!row) return undefined;
  return row.outcome === 'failed' ? { outcome: 'failed' } : { outcome: 'retrying', run_at: formatTimestamp(row.run_at) };
}

export class Store {
  private readonly enqueues: { submit(item: Keyed<TracedJob>): Promise<void> };
  private readonly completes: { submit(item: Keyed<JobRef>): Promise<boolean> };
  private readonly events: JobEvents;
  private readonly onAvailable: AvailabilityListener;
  private readonly handOff: HandOff | undefined;
  private readonly idempotency: Idempotency | undefined;

  constructor(
    private readonly db: Database,
    options: StoreOptions = {},
  ) {
    this.onAvailable = options.onAvailable ?? (() => undefined);
    this.handOff = options.handOff;
    this.idempotency = options.idempotency;
    this.events = options.events ?? noJobEvents;
    const enqueueEach = (items: Array<Keyed<TracedJob>>) => withoutTakenKeys(items, (rest) => this.enqueueEach(rest));
    const completeEach = (items: Array<Keyed<JobRef>>) => withoutTakenKeys(items, (rest) => this.completeEach(rest));
    this.enqueues = options.coalesce === false ? alone(enqueueEach) : new Coalescer(enqueueEach, COALESCE_OPTIONS);
    this.completes = options.coalesce === false ? alone(completeEach) : new Coalescer(completeEach, COALESCE_OPTIONS);
  }

  /**
   * Runs an operation's statement; with idempotency keys, in one transaction with the answers
   * remembered for them (answers(result) names them), so that either both are stored or neither.
   */
  private async effect<T>(keyed: boolean, run: (q: Queryable) => Promise<T>, answers: (result: T) => Array<ReturnType<typeof answerFor> | undefined>): Promise<T> {
    const idempotency = this.idempotency;
    if (!keyed || !idempotency) return run(this.db);
    return this.db.transaction(async (tx) => {
      const result = await run(tx);
      await idempotency.remember(tx, answers(result).filter((a) => a !== undefined));
      return result;
    });
  }

  /**
   * Throws JobExistsError when (queue, id) is waiting or in flight. traceparent: the request's
   * trace context (checked), kept with the job.
   */
  async enqueue(job: NewJob, idem?: IdempotencyKey, traceparent?: string): Promise<void> {
    // Checked before the job joins a shared statement: its refusal must be its own.
    checkJobKey(job, '/body');
    await this.enqueues.submit({ item: withTrace(withStoredRunAt(job, '/body/run_at'), traceparent), idem });
  }

  /** Returns how many jobs were stored; the rest already existed. */
  async enqueueBatch(jobs: NewJob[], idem?: IdempotencyKey, traceparent?: string): Promise<number> {
    jobs.forEach((job, i) => checkJobKey(job, `/body/${i}`));
    const canonical = jobs.map((job, i) => withTrace(withStoredRunAt(job, `/body/${i}/run_at`), traceparent));
    const { stored, queues, perQueue } = await this.effect(
      idem !== undefined,
      (q) => (canonical.length === 0 ? Promise.resolve({ stored: 0, queues: [], perQueue: new Map<string, number>() }) : insertJobs(q, json(canonical))),
      () => [idem && answerFor(idem, { result: undefined })],
    );
    for (const [queue, n] of perQueue) this.events.enqueued(queue, n);
    if (queues.length > 0) this.onAvailable(queues);
    return stored;
  }

  /**
   * Stores single enqueues together; each job not stored gets its JobExistsError. Where a
   * request waits for a job's queue, the job may be stored already leased to it (HandOff),
   * which it learns once the statement (and its transaction) is committed.
   */
  private async enqueueEach(items: Array<Keyed<TracedJob>>): Promise<Array<undefined | Error>> {
    const jobs = items.map((i) => i.item);
    const plan = this.handOff?.plan(jobs);
    let stored;
    try {
      stored = await this.keyedOrNot(
        items,
        (job) => new JobExistsError(job.queue, job.id),
        () => insertJobsLeasing(this.db, json(jobs), plan?.positions ?? []),
        (answers, windowSeconds) => insertJobsLeasingKeyed(this.db, json(jobs), plan?.positions ?? [], answers, windowSeconds),
      );
    } catch (err) {
      plan?.cancel();
      throw err;
    }
    // The requests that waited get their jobs before these producers get their answers.
    const handed = plan?.settle(stored.flatMap((s) => (s.delivery ? [s.delivery] : [])));
    for (const s of stored) this.events.enqueued(s.queue, 1);
    const waiting = new Set(stored.filter((s) => !s.delivery).map((s) => s.queue));
    if (waiting.size > 0) this.onAvailable([...waiting]);
    await handed;
    const keys = new Set(stored.map((s) => key(s.queue, s.id)));
    // The first of two requests for one (queue, id) is the one stored (the keyed statement
    // remembers its answers by the same rule).
    return jobs.map((job) => (keys.delete(key(job.queue, job.id)) ? undefined : new JobExistsError(job.queue, job.id)));
  }

  /**
   * A shared statement of single requests: when some carry Idempotency-Keys, its keyed form,
   * which remembers each keyed request's answer (its success, or `refusal`) in the same
   * statement as the effect, and fails with KeyTakenError, having changed nothing, when a key
   * was taken already.
   */
  private async keyedOrNot<I, R>(
    items: Array<Keyed<I>>,
    refusal: (item: I) => RelayError,
    plain: () => Promise<R>,
    keyed: (answers: KeyedItemAnswers[], windowSeconds: number) => Promise<R>,
  ): Promise<R> {
    const idempotency = this.idempotency;
    if (!idempotency || !items.some((i) => i.idem)) return plain();
    const answers = items.flatMap(({ item, idem }, i) => (idem ? [possibleAnswers(idem, i + 1, withoutStack(() => refusal(item)))] : []));
    try {
      return await keyed(answers, idempotency.windowSeconds);
    } catch (err) {
      throw asKeyTaken(err);
    }
  }

  async heartbeat(queue: string, id: string, update: StateUpdate, runId?: string): Promise<void> {
    const state = update.replace ? { replace: true as const, json: stateParam(update.state) } : { replace: false as const };
    if (!(await renewLease(this.db, queue, id, runId ?? null, state))) throw new JobNotFoundError(queue, id, true);
  }

  async reschedule(job: RescheduleRequest, idem?: IdempotencyKey): Promise<void> {
    const runAt = job.run_at === undefined ? null : parseRfc3339(job.run_at, '/body/run_at');
    const outcome = await this.effect<Outcome<undefined>>(
      idem !== undefined,
      async (q) => {
        const released = await rescheduleJob(q, {
          queue: job.queue,
          id: job.id,
          timeout: job.timeout,
          maxRetries: job.max_retries ?? 0,
          payloadJson: json(job.payload ?? null),
          stateJson: stateParam(job.state),
          runAt,
          runId: job.run_id ?? null,
        });
        return released ? { result: undefined } : { error: new JobNotFoundError(job.queue, job.id, true) };
      },
      (o) => [idem && answerFor(idem, o)],
    );
    unwrap(outcome);
    this.events.rescheduled(job.queue);
    this.onAvailable([job.queue]);
  }

  async complete(queue: string, id: string, runId?: string, idem?: IdempotencyKey): Promise<void> {
    const removed = await this.completes.submit({ item: { queue, job_id: id, run_id: runId }, idem });
    if (!removed) throw new JobNotFoundError(queue, id, false);
  }

  async completeBatch(refs: JobRef[], idem?: IdempotencyKey): Promise<CompleteBatchResult> {
    const { result, rows } = await this.effect(
      idem !== undefined,
      async (q) => {
        const { removed, rows } = await this.removeEach(q, refs);
        return { result: { completed: refs.filter((_, i) => removed[i]), not_found: refs.filter((_, i) => !removed[i]) }, rows };
      },
      ({ result }) => [idem && answerFor(idem, { result })],
    );
    this.completed(rows);
    return result;
  }

  /** Single completes together, each with its answer remembered when it carries a key. */
  private async completeEach(items: Array<Keyed<JobRef>>): Promise<boolean[]> {
    const refs = items.map((i) => i.item);
    const rows = await this.keyedOrNot(
      items,
      (ref) => new JobNotFoundError(ref.queue, ref.job_id, false),
      () => deleteJobs(this.db, refs),
      (answers, windowSeconds) => deleteJobsKeyed(this.db, refs, answers, windowSeconds),
    );
    this.completed(rows);
    return removedBy(refs, rows);
  }

  private completed(rows: RemovedJob[]): void {
    for (const r of rows) this.events.completed(r.queue, r.processed_seconds);
  }

  /** For each reference, whether it removed its job (and the jobs removed). */
  private async removeEach(q: Queryable, refs: JobRef[]): Promise<{ removed: boolean[]; rows: RemovedJob[] }> {
    if (refs.length === 0) return { removed: [], rows: [] };
    const rows = await deleteJobs(q, refs);
    return { removed: removedBy(refs, rows), rows };
  }

  async fail(queue: string, id: string, options: FailOptions, idem?: IdempotencyKey): Promise<FailResult> {
    const outcome = await this.effect<Outcome<FailResult>>(
      idem !== undefined,
      async (q) => {
        const result = await failOne(q, queue, id, options);
        return result ? { result } : { error: new JobNotFoundError(queue, id, true) };
      },
      (o) => [idem && answerFor(idem, o)],
    );
    const result = unwrap(outcome);
    this.failedOne(queue, result);
    // A retry may be due at once (retry_in 0): waiting polls must hear of it.
    if (result.outcome === 'retrying') this.onAvailable([queue]);
    return result;
  }

  private failedOne(queue: string, result: FailResult): void {
    if (result.outcome === 'retrying') this.events.retried(queue, 'fail', 1);
    else this.events.failed(queue, 'fail', 1);
  }

  /**
   * Settles deliveries (`POST /v1/next`): the completions with the batch completion's
   * statement, then each failure with the fail statement, in body order. With more than one
   * statement they share a transaction: an error leaves none of them applied, so that an
   * error answer always means "nothing settled". Every item names its run_id, so settling
   * again (a resent request) finds the deliveries gone: no second effect.
   */
  async settle(items: Settlement[]): Promise<Settled> {
    const settled: Settled = { completed: [], failed: [], not_found: [] };
    if (items.length === 0) return settled;
    const delivery = ({ queue, job_id, run_id }: Settlement): Delivery => ({ queue, job_id, run_id });
    const completions = items.filter((i) => i.fail === undefined).map(delivery);
    const failures = items.filter((i) => i.fail !== undefined);
    const run = async (q: Queryable) => {
      const removal = await this.removeEach(q, completions);
      const failed: Array<FailResult | undefined> = [];
      for (const f of failures) failed.push(await failOne(q, f.queue, f.job_id, { runId: f.run_id, error: f.fail!.error, retryIn: f.fail!.retry_in }));
      return { ...removal, failed };
    };
    const statements = (completions.length > 0 ? 1 : 0) + failures.length;
    const { removed, rows, failed } = statements > 1 ? await this.db.transaction(run) : await run(this.db);
    this.completed(rows);
    const retrying = new Set<string>();
    let c = 0;
    let f = 0;
    for (const item of items) {
      if (item.fail === undefined) {
        (removed[c] ? settled.completed : settled.not_found).push(completions[c]!);
        c++;
        continue;
      }
      const result = failed[f++];
      if (!result) {
        settled.not_found.push(delivery(item));
        continue;
      }
      settled.failed.push({ ...delivery(item), ...result });
      this.failedOne(item.queue, result);
      if (result.outcome === 'retrying') retrying.add(item.queue);
    }
    if (retrying.size > 0) this.onAvailable([...retrying]);
    return settled;
  }

  async listFailed(queue: string, id: string | undefined, limit: number): Promise<FailedJob[]> {
    return listFailedJobs(this.db, queue, id ?? null, limit);
  }

  /** Returns expired leases to their queues or to the failed jobs, and purges expired idempotency keys; counts what it did. */
  async reapExpired(): Promise<{ retried: number; failed: number; keysPurged: number }> {
    const total = { retried: 0, failed: 0, keysPurged: (await this.idempotency?.purge()) ?? 0 };
    for (;;) {
      const { retried, failed, queues, perQueue } = await reapExpiredLeases(this.db, REAP_BATCH);
      for (const r of perQueue) {
        if (r.retried > 0) this.events.retried(r.queue, 'lease_expired', r.retried);
        if (r.failed > 0) this.events.failed(r.queue, 'lease_expired', r.failed);
      }
      if (queues.length > 0) this.onAvailable(queues);
      total.retried += retried;
      total.failed += failed;
      if (retried + failed < REAP_BATCH) return total;
    }
  }

  /** Throws ServiceUnavailableError when the database does not answer. */
  async ping(): Promise<void> {
    try {
      await ping(this.db);
    } catch (err) {
      throw new ServiceUnavailableError(`the database did not answer: ${toRelayError(err).message}`);
    }
  }
}
