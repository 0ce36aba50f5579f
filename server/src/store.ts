import type { Database, Statement } from './db/index.js';
import { Coalescer } from './coalescer.js';
import { checkJobKey } from './job-rules.js';
import type { Reservation } from './long-poll.js';
import { JobExistsError, JobNotFoundError, ServiceUnavailableError, StorageUnavailableError, toRelayError } from './errors.js';
import type {
  CompleteBatchResult,
  FailOutcome,
  FailedJob,
  JobRef,
  Json,
  LeasedJob,
  NewJob,
  RescheduleRequest,
  StateUpdate,
} from './jobs.js';
import { formatTimestamp, parseRfc3339 } from './time.js';

/*
 * All of relay's SQL. Each operation is one statement, so each is atomic on its own and
 * needs no transaction. Statements are named so node-postgres prepares each once per
 * connection. Every statement on the request path names its queue (Citus-ready).
 *
 * A job is in flight exactly while run_id IS NOT NULL. run_id (a sequence value, sent to
 * clients as a string) is new at every delivery and fences calls from a stale lease.
 */

// Inserts the jobs of $1 (a JSON array) in array order, so seq (the FIFO tie-break) follows
// it; a (queue, id) that exists or repeats is skipped, the first occurrence wins.
const INSERT_JOBS = `INSERT INTO relay_jobs (queue, id, timeout, max_retries, payload, state, run_at)
           SELECT j.queue, j.id, j.timeout, COALESCE(j.max_retries, 0), COALESCE(j.payload, 'null'::jsonb),
                  NULLIF(j.state, 'null'::jsonb), COALESCE(j.run_at, now())
           FROM jsonb_to_recordset($1::jsonb)
             AS j(queue text, id text, timeout integer, max_retries integer, payload jsonb, state jsonb, run_at timestamptz)
           ON CONFLICT DO NOTHING`;

const ENQUEUE_EACH: Statement = {
  name: 'relay_enqueue_each',
  // Params: $1 the jobs as a JSON array, $2 the 1-based positions of those to store already
  // leased to a waiting long poll (hand-off). A position is leased only when its queue has no
  // older job ready (FIFO: the waiter would otherwise claim that one first). Jobs in array
  // order, so seq follows it; a (queue, id) that exists or repeats is skipped, the first wins.
  // Returns (queue, id) of each job stored, and the delivery of each one leased.
  text: `INSERT INTO relay_jobs (queue, id, timeout, max_retries, payload, state, run_at, run_id, attempt, lease_expires_at)
           SELECT j.queue, j.id, j.timeout, COALESCE(j.max_retries, 0), COALESCE(j.payload, 'null'::jsonb),
                  NULLIF(j.state, 'null'::jsonb), COALESCE(j.run_at, now()),
                  CASE WHEN h.leased THEN nextval('relay_run_seq') END,
                  CASE WHEN h.leased THEN 1 ELSE 0 END,
                  CASE WHEN h.leased THEN now() + j.timeout * interval '1 second' END
           FROM ROWS FROM (jsonb_to_recordset($1::jsonb)
                  AS (queue text, id text, timeout integer, max_retries integer, payload jsonb, state jsonb, run_at timestamptz))
                WITH ORDINALITY AS j(queue, id, timeout, max_retries, payload, state, run_at, ord)
           CROSS JOIN LATERAL (
             SELECT CASE WHEN j.ord = ANY($2::bigint[]) THEN NOT EXISTS (
                      SELECT 1 FROM relay_jobs w WHERE w.queue = j.queue AND w.run_id IS NULL AND w.run_at <= now())
                    ELSE false END AS leased) h
           ORDER BY j.ord
           ON CONFLICT DO NOTHING
           RETURNING queue, id, run_id::text AS run_id, attempt, timeout, max_retries,
                     CASE WHEN run_id IS NOT NULL THEN payload END AS payload,
                     CASE WHEN run_id IS NOT NULL THEN state END AS state, run_at`,
};

const ENQUEUE_BATCH: Statement = {
  name: 'relay_enqueue_batch',
  // Params: $1 the jobs as a JSON array. Returns the number of jobs stored and their queues.
  text: `WITH stored AS (${INSERT_JOBS} RETURNING queue)
         SELECT count(*)::int AS stored, COALESCE(array_agg(DISTINCT queue), '{}') AS queues FROM stored`,
};

const NEXT: Statement = {
  name: 'relay_next',
  // Params: $1 queue, $2 how many. Claims up to $2 waiting jobs whose run_at has come.
  // The CTE with LIMIT ... FOR UPDATE SKIP LOCKED fixes the set first; without it the planner
  // may run the sub-select per row and claim more than the limit (relay-rs 0.5.2).
  text: `WITH picked AS (
           SELECT queue, id FROM relay_jobs
           WHERE queue = $1 AND run_id IS NULL AND run_at <= now()
           ORDER BY run_at, seq
           LIMIT $2
           FOR UPDATE SKIP LOCKED
         ), claimed AS (
           UPDATE relay_jobs j
           SET run_id = nextval('relay_run_seq'),
               attempt = j.attempt + 1,
               lease_expires_at = now() + j.timeout * interval '1 second'
           FROM picked p
           WHERE j.queue = p.queue AND j.id = p.id
           RETURNING j.id, j.queue, j.timeout, j.max_retries, j.payload, j.state, j.run_at, j.seq,
                     j.attempt, j.run_id
         )
         SELECT id, queue, timeout, max_retries, payload, state, run_at, attempt, run_id::text AS run_id
         FROM claimed ORDER BY run_at, seq`,
};

const RELEASE: Statement = {
  name: 'relay_release',
  // Params: $1 [{queue, id, run_id}] as JSON: deliveries nobody received (the client left
  // before the answer). Puts them back as if never handed out: no retry, no attempt counted.
  text: `UPDATE relay_jobs j
         SET run_id = NULL, lease_expires_at = NULL, attempt = j.attempt - 1
         FROM jsonb_to_recordset($1::jsonb) AS r(queue text, id text, run_id text)
         WHERE j.queue = r.queue AND j.id = r.id AND j.run_id::text = r.run_id`,
};

const HEARTBEAT: Statement = {
  name: 'relay_heartbeat',
  // Params: $1 queue, $2 id, $3 replace state?, $4 state (JSON text or NULL), $5 run_id or NULL.
  // Touches only unindexed columns, so it is a HOT update. Returns 1 row or 0 (not in flight).
  text: `UPDATE relay_jobs
         SET lease_expires_at = now() + timeout * interval '1 second',
             state = CASE WHEN $3::boolean THEN $4::jsonb ELSE state END
         WHERE queue = $1 AND id = $2 AND run_id IS NOT NULL AND ($5::text IS NULL OR run_id::text = $5)`,
};

const RESCHEDULE: Statement = {
  name: 'relay_reschedule',
  // Params: $1 queue, $2 id, $3 timeout, $4 max_retries, $5 payload, $6 state, $7 run_at,
  // $8 run_id. Releases an in-flight job as if newly enqueued (fresh retry budget, attempt
  // count and FIFO position). Returns 1 row or 0 (not in flight).
  text: `UPDATE relay_jobs
         SET timeout = $3, max_retries = $4, retries = 0, attempt = 0,
             payload = $5::jsonb, state = $6::jsonb, run_at = COALESCE($7::timestamptz, now()),
             seq = nextval('relay_job_seq'), run_id = NULL, lease_expires_at = NULL
         WHERE queue = $1 AND id = $2 AND run_id IS NOT NULL AND ($8::text IS NULL OR run_id::text = $8)
         RETURNING 1 AS released`,
};

const COMPLETE: Statement = {
  name: 'relay_complete',
  // Params: $1 [{queue, job_id, run_id?}] as JSON. Removes each listed job that exists (and,
  // where run_id is given, is still in that delivery). Returns (queue, id, the job's run_id)
  // for each job removed.
  text: `DELETE FROM relay_jobs j
         USING jsonb_to_recordset($1::jsonb) AS r(queue text, job_id text, run_id text)
         WHERE j.queue = r.queue AND j.id = r.job_id AND (r.run_id IS NULL OR j.run_id::text = r.run_id)
         RETURNING j.queue, j.id, j.run_id::text AS run_id`,
};

// A failure and a lease expiry share one rule: count a retry and put the job back, or, when
// its retries are used up (never for a negative max_retries), move it to relay_failed_jobs.
const RETRIES_USED_UP = 'j.max_retries >= 0 AND j.retries >= j.max_retries';
const MOVE_TO_FAILED = `INSERT INTO relay_failed_jobs
           (queue, id, timeout, max_retries, attempts, payload, state, run_at, enqueued_at, reason)`;

const FAIL: Statement = {
  name: 'relay_fail',
  // Params: $1 queue, $2 id, $3 run_id or NULL, $4 reason, $5 retry_in seconds or NULL for
  // the default backoff min(2^(attempt-1), 3600), the exponent capped so that a job failed
  // thousands of times does not overflow the power. Returns one row: the outcome, and run_at
  // when retrying; no row when the job is not in flight.
  text: `WITH target AS (
           SELECT queue, id FROM relay_jobs
           WHERE queue = $1 AND id = $2 AND run_id IS NOT NULL AND ($3::text IS NULL OR run_id::text = $3)
           FOR UPDATE
         ), dead AS (
           DELETE FROM relay_jobs j USING target t
           WHERE j.queue = t.queue AND j.id = t.id AND ${RETRIES_USED_UP}
           RETURNING j.*
         ), moved AS (
           ${MOVE_TO_FAILED}
           SELECT queue, id, timeout, max_retries, attempt, payload, state, run_at, enqueued_at, $4 FROM dead
         ), retried AS (
           UPDATE relay_jobs j
           SET retries = j.retries + 1, run_id = NULL, lease_expires_at = NULL,
               run_at = now() + COALESCE($5::float8, LEAST(power(2, LEAST(GREATEST(j.attempt - 1, 0), 12)), 3600)) * interval '1 second'
           FROM target t
           WHERE j.queue = t.queue AND j.id = t.id AND NOT (${RETRIES_USED_UP})
           RETURNING j.run_at
         )
         SELECT 'failed' AS outcome, NULL::timestamptz AS run_at FROM dead
         UNION ALL
         SELECT 'retrying', run_at FROM retried`,
};

const REAP: Statement = {
  name: 'relay_reap',
  // Params: $1 how many at the most. Expired leases across all queues: SKIP LOCKED plus the
  // re-check of run_id under the row lock means two reapers never count one expiry twice.
  // Returns the counts retried and failed, and the queues that got a job back.
  text: `WITH expired AS (
           SELECT queue, id FROM relay_jobs
           WHERE run_id IS NOT NULL AND lease_expires_at < now()
           LIMIT $1
           FOR UPDATE SKIP LOCKED
         ), dead AS (
           DELETE FROM relay_jobs j USING expired e
           WHERE j.queue = e.queue AND j.id = e.id AND ${RETRIES_USED_UP}
           RETURNING j.*
         ), moved AS (
           ${MOVE_TO_FAILED}
           SELECT queue, id, timeout, max_retries, attempt, payload, state, run_at, enqueued_at, 'lease expired' FROM dead
         ), retried AS (
           UPDATE relay_jobs j
           SET retries = j.retries + 1, run_id = NULL, lease_expires_at = NULL
           FROM expired e
           WHERE j.queue = e.queue AND j.id = e.id AND NOT (${RETRIES_USED_UP})
           RETURNING j.queue
         )
         SELECT (SELECT count(*) FROM retried)::int AS retried, (SELECT count(*) FROM dead)::int AS failed,
                (SELECT COALESCE(array_agg(DISTINCT queue), '{}') FROM retried) AS queues`,
};

const LIST_FAILED: Statement = {
  name: 'relay_list_failed',
  // Params: $1 queue, $2 id or NULL, $3 limit. Newest failure first.
  text: `SELECT id, queue, timeout, max_retries, payload, state, run_at, attempts, reason, failed_at
         FROM relay_failed_jobs
         WHERE queue = $1 AND ($2::text IS NULL OR id = $2)
         ORDER BY failure_id DESC
         LIMIT $3`,
};

const NOTIFY: Statement = {
  name: 'relay_notify',
  // Params: $1 channel, $2 queue names. Its own statement, after the change committed:
  // NOTIFY takes a database-wide lock at commit, which would stop concurrent enqueues from
  // sharing a WAL flush (group commit) if every enqueue notified in its own transaction.
  text: 'SELECT pg_notify($1, q) FROM unnest($2::text[]) AS q',
};

const PING: Statement = { name: 'relay_ping', text: 'SELECT 1' };

/** The statements of the request path and the reaper, for tools that show their plans (scripts/explain.ts). */
export const hotStatements = { next: NEXT, reap: REAP, heartbeat: HEARTBEAT, complete: COMPLETE, enqueue: ENQUEUE_EACH } as const;

const REAP_BATCH = 1000;

function json(value: Json): string {
  return JSON.stringify(value);
}

/** undefined and null both mean "no state"; anything else is stored as JSON. */
function stateParam(state: Json): string | null {
  return state === undefined || state === null ? null : json(state);
}

/** A timestamptz as read (text, see db/) in RFC 3339 UTC, to the microsecond. */
function iso(value: unknown): string {
  return formatTimestamp(String(value));
}

/** The job with its run_at (if any) in the canonical UTC text; throws a 400 naming path. */
function withStoredRunAt<T extends NewJob>(job: T, path: string): T {
  return job.run_at === undefined ? job : { ...job, run_at: parseRfc3339(job.run_at, path) };
}

interface JobRow {
  id: string;
  queue: string;
  timeout: number;
  max_retries: number;
  payload: Json;
  state: Json | null;
  run_at: string;
}

function withoutNullState<T extends { state?: Json }>(job: T, state: Json | null): T {
  if (state !== null) job.state = state;
  return job;
}

type LeasedRow = JobRow & { attempt: number; run_id: string };

/** What ENQUEUE_EACH returns per job stored: payload and state only for a leased one. */
type EnqueuedRow = Omit<LeasedRow, 'run_id'> & { run_id: string | null };

/** The fields every job the API returns has, from a row. */
function jobFields(r: JobRow) {
  return { id: r.id, queue: r.queue, timeout: r.timeout, max_retries: r.max_retries, payload: r.payload, run_at: iso(r.run_at) };
}

function leasedJob(r: LeasedRow): LeasedJob {
  return withoutNullState<LeasedJob>({ ...jobFields(r), attempt: r.attempt, run_id: r.run_id }, r.state);
}

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

const key = (...parts: Array<string | null>) => JSON.stringify(parts);

export class Store {
  private readonly enqueues = new Coalescer<NewJob, void>((jobs) => this.enqueueEach(jobs), COALESCE_OPTIONS);
  private readonly completes = new Coalescer<JobRef, boolean>((refs) => this.completeEach(refs), COALESCE_OPTIONS);

  constructor(
    private readonly db: Database,
    private readonly onAvailable: AvailabilityListener = () => undefined,
    /** Sets aside a waiting long poll of a queue, to store new jobs already leased to it. */
    private readonly reserve: (queue: string) => Reservation | undefined = () => undefined,
  ) {}

  /** Throws JobExistsError when (queue, id) is waiting or in flight. */
  async enqueue(job: NewJob): Promise<void> {
    // Checked before the job joins a shared statement: its refusal must be its own.
    checkJobKey(job, '/body');
    await this.enqueues.submit(withStoredRunAt(job, '/body/run_at'));
  }

  /** Returns how many jobs were stored; the rest already existed. */
  async enqueueBatch(jobs: NewJob[]): Promise<number> {
    if (jobs.length === 0) return 0;
    jobs.forEach((job, i) => checkJobKey(job, `/body/${i}`));
    const canonical = jobs.map((job, i) => withStoredRunAt(job, `/body/${i}/run_at`));
    const { rows } = await this.db.query<{ stored: number; queues: string[] }>(ENQUEUE_BATCH, [json(canonical)]);
    const { stored = 0, queues = [] } = rows[0] ?? {};
    if (queues.length > 0) this.onAvailable(queues);
    return stored;
  }

  /**
   * Stores single enqueues together; each job not stored gets its JobExistsError. Where a
   * long poll waits on a job's queue, the job is stored leased to it (a hand-off: the waiter
   * gets it without a claim of its own), unless an older job of that queue is ready.
   */
  private async enqueueEach(jobs: NewJob[]): Promise<Array<undefined | Error>> {
    const reservations = this.reserveWaiters(jobs);
    const positions = [...reservations.values()].flatMap((r) => r.positions);
    let rows: EnqueuedRow[];
    try {
      ({ rows } = await this.db.query<EnqueuedRow>(ENQUEUE_EACH, [json(jobs), positions]));
    } catch (err) {
      for (const { reservation } of reservations.values()) reservation.cancel();
      throw err;
    }
    const leased = new Map<string, LeasedJob[]>();
    const waiting = new Set<string>();
    for (const row of rows) {
      if (row.run_id === null) waiting.add(row.queue);
      else {
        const list = leased.get(row.queue) ?? [];
        list.push(leasedJob(row as LeasedRow));
        leased.set(row.queue, list);
      }
    }
    for (const [queue, { reservation }] of reservations) {
      const handed = leased.get(queue);
      if (handed) reservation.deliver(handed);
      else reservation.cancel();
    }
    const stored = new Set(rows.map((r) => key(r.queue, r.id)));
    // The first of two requests for one (queue, id) is the one stored.
    const results = jobs.map((job) => (stored.delete(key(job.queue, job.id)) ? undefined : new JobExistsError(job.queue, job.id)));
    if (waiting.size > 0) this.onAvailable([...waiting]);
    return results;
  }

  /**
   * For each queue of jobs with a waiting long poll, that waiter and the 1-based positions of
   * the jobs to lease to it (at most as many as it asked for). Only queues whose jobs here all
   * run now (no run_at): a job due later, or one with an earlier run_at, goes the usual way.
   */
  private reserveWaiters(jobs: NewJob[]): Map<string, { reservation: Reservation; positions: number[] }> {
    const byQueue = new Map<string, number[]>();
    const excluded = new Set<string>();
    jobs.forEach((job, i) => {
      if (job.run_at !== undefined) excluded.add(job.queue);
      else {
        const positions = byQueue.get(job.queue) ?? [];
        positions.push(i + 1);
        byQueue.set(job.queue, positions);
      }
    });
    const reservations = new Map<string, { reservation: Reservation; positions: number[] }>();
    for (const [queue, positions] of byQueue) {
      if (excluded.has(queue)) continue;
      const reservation = this.reserve(queue);
      if (reservation) reservations.set(queue, { reservation, positions: positions.slice(0, reservation.limit) });
    }
    return reservations;
  }

  async next(queue: string, limit: number): Promise<LeasedJob[]> {
    const { rows } = await this.db.query<LeasedRow>(NEXT, [queue, limit]);
    return rows.map(leasedJob);
  }

  /** Undoes deliveries that never reached their client. */
  async release(jobs: LeasedJob[]): Promise<void> {
    if (jobs.length === 0) return;
    await this.db.query(RELEASE, [json(jobs.map(({ queue, id, run_id }) => ({ queue, id, run_id })))]);
    this.onAvailable([...new Set(jobs.map((j) => j.queue))]);
  }

  async heartbeat(queue: string, id: string, update: StateUpdate, runId?: string): Promise<void> {
    const state = update.replace ? stateParam(update.state) : null;
    const { rowCount } = await this.db.query(HEARTBEAT, [queue, id, update.replace, state, runId ?? null]);
    if (rowCount === 0) throw new JobNotFoundError(queue, id, true);
  }

  async reschedule(job: RescheduleRequest): Promise<void> {
    const { rows } = await this.db.query(RESCHEDULE, [
      job.queue,
      job.id,
      job.timeout,
      job.max_retries ?? 0,
      json(job.payload ?? null),
      stateParam(job.state),
      job.run_at === undefined ? null : parseRfc3339(job.run_at, '/body/run_at'),
      job.run_id ?? null,
    ]);
    if (rows.length === 0) throw new JobNotFoundError(job.queue, job.id, true);
    this.onAvailable([job.queue]);
  }

  async complete(queue: string, id: string, runId?: string): Promise<void> {
    const removed = await this.completes.submit({ queue, job_id: id, run_id: runId });
    if (!removed) throw new JobNotFoundError(queue, id, false);
  }

  async completeBatch(refs: JobRef[]): Promise<CompleteBatchResult> {
    const removed = await this.completeEach(refs);
    return {
      completed: refs.filter((_, i) => removed[i]),
      not_found: refs.filter((_, i) => !removed[i]),
    };
  }

  /**
   * For each reference, whether it removed its job. A job listed twice counts for the first
   * reference that matches it (any run_id, or the job's own).
   */
  private async completeEach(refs: JobRef[]): Promise<boolean[]> {
    if (refs.length === 0) return [];
    const { rows } = await this.db.query<{ queue: string; id: string; run_id: string | null }>(COMPLETE, [json(refs)]);
    const removed = new Map(rows.map((r) => [key(r.queue, r.id), r.run_id]));
    return refs.map((ref) => {
      const k = key(ref.queue, ref.job_id);
      if (!removed.has(k)) return false;
      if (ref.run_id !== undefined && ref.run_id !== removed.get(k)) return false;
      removed.delete(k);
      return true;
    });
  }

  async fail(queue: string, id: string, options: { runId?: string; error?: string; retryIn?: number }): Promise<FailOutcome> {
    const { rows } = await this.db.query<{ outcome: 'retrying' | 'failed'; run_at: string | null }>(FAIL, [
      queue,
      id,
      options.runId ?? null,
      options.error ?? 'failed by worker',
      options.retryIn ?? null,
    ]);
    const row = rows[0];
    if (!row) throw new JobNotFoundError(queue, id, true);
    // A retry may be due at once (retry_in 0): waiting polls must hear of it.
    if (row.outcome === 'retrying') this.onAvailable([queue]);
    return row.outcome === 'failed' ? { outcome: 'failed' } : { outcome: 'retrying', run_at: iso(row.run_at) };
  }

  async listFailed(queue: string, id: string | undefined, limit: number): Promise<FailedJob[]> {
    const { rows } = await this.db.query<JobRow & { attempts: number; reason: string; failed_at: string }>(
      LIST_FAILED,
      [queue, id ?? null, limit],
    );
    return rows.map((r) =>
      withoutNullState<FailedJob>(
        {
          ...jobFields(r),
          attempts: r.attempts,
          reason: r.reason,
          failed_at: iso(r.failed_at),
        },
        r.state,
      ),
    );
  }

  /** Returns expired leases to their queues or to the failed jobs; counts what it did. */
  async reapExpired(): Promise<{ retried: number; failed: number }> {
    const total = { retried: 0, failed: 0 };
    for (;;) {
      const { rows } = await this.db.query<{ retried: number; failed: number; queues: string[] }>(REAP, [REAP_BATCH]);
      const { retried = 0, failed = 0, queues = [] } = rows[0] ?? {};
      if (queues.length > 0) this.onAvailable(queues);
      total.retried += retried;
      total.failed += failed;
      if (retried + failed < REAP_BATCH) return total;
    }
  }

  /** Sends one NOTIFY per queue on channel (payloads are queue names, prefixed by the caller). */
  async notify(channel: string, payloads: string[]): Promise<void> {
    await this.db.query(NOTIFY, [channel, payloads]);
  }

  /** Throws ServiceUnavailableError when the database does not answer. */
  async ping(): Promise<void> {
    try {
      await this.db.query(PING);
    } catch (err) {
      throw new ServiceUnavailableError(`the database did not answer: ${toRelayError(err).message}`);
    }
  }
}
