import { setMaxListeners } from 'node:events';
import type { Queryable } from './db/index.js';
import { OverloadedError } from './errors.js';
import type { HandOff, HandOffPlan } from './hand-off.js';
import type { LeasedJob, NewJob } from './jobs.js';
import { claimJobs } from './sql/next.js';
import { releaseDeliveries } from './sql/release.js';

/**
 * Long-polling `next`: a request that finds no job waits here, holding no database
 * connection, until a notification names its queue, a re-check comes due, its wait runs out,
 * or its client goes away.
 *
 * Notifications are hints. A notification wakes one sleeping waiter of the queue (not all of
 * them: one new job needs one claim, not a stampede); a waiter that claims a full batch
 * passes the wake on, since more may be waiting. Independently, each queue with waiters
 * re-checks once per recheckMs, so a lost notification, or one that came before the job's
 * run_at, delays a job by at most that.
 *
 * Hand-off (HandOff): a single enqueue on this server for a queue with a sleeping waiter
 * reserves that waiter, and the enqueue stores the job already leased to it; the waiter
 * answers with it without a claim of its own (one database round trip and commit fewer
 * between enqueue and delivery). Nothing is leased when an older job of the queue is ready
 * (FIFO), and a waiter whose client left answers through next(), which releases what it was
 * handed.
 *
 * Known empty: a wait that starts right after a claim of its queue found no more jobs, with
 * nothing announced for the queue since that claim began, sleeps at once instead of claiming.
 * A worker re-polls after every job it gets; at a low rate each of those claims found nothing
 * and kept the waiter claiming, so not reservable, when the next job came. Every way a job
 * becomes ready on any server announces it (notify), except time: a job whose run_at passes.
 * The mark lasts recheckMs, so such a job waits at most that, the bound a lost notification
 * already has.
 */

/**
 * What a waiting request is doing. Only these moves are allowed (see MOVES):
 * - claiming: its claim is under way; a wake now means "claim once more" (claiming-again);
 * - sleeping: waiting for a wake, its deadline or its client leaving; the one state in which a
 *   wake is taken at once and in which it may be reserved for a hand-off;
 * - reserved: set aside by an enqueue under way; the enqueue settles it with jobs (done) or
 *   with none (claiming);
 * - done: answered.
 */
type WaiterState = 'claiming' | 'claiming-again' | 'sleeping' | 'reserved' | 'done';

const MOVES: Record<WaiterState, readonly WaiterState[]> = {
  claiming: ['claiming-again', 'sleeping', 'done'],
  'claiming-again': ['claiming', 'done'],
  sleeping: ['claiming', 'reserved', 'done'],
  reserved: ['claiming', 'done'],
  done: [],
};

/** A queue's waiters in arrival order, and the sleeping ones apart, so picking one costs the same however many wait. */
interface WaitingQueue {
  waiters: Set<Waiter>;
  sleeping: Set<Waiter>;
  timer: NodeJS.Timeout;
}

class Waiter {
  #state: WaiterState = 'claiming';
  #endSleep: (() => void) | undefined;
  /** Settles when a reservation is settled; `handed` then holds the jobs leased to this request, if any. */
  settled: Promise<void> | undefined;
  handed: LeasedJob[] | undefined;

  constructor(
    /** How many jobs its request asked for. */
    readonly limit: number,
    private readonly queue: WaitingQueue,
  ) {}

  get state(): WaiterState {
    return this.#state;
  }

  to(next: WaiterState): void {
    if (!MOVES[this.#state].includes(next)) throw new Error(`long poll: a waiter cannot go from ${this.#state} to ${next}`);
    if (this.#state === 'sleeping') this.queue.sleeping.delete(this);
    this.#state = next;
    if (next === 'sleeping') this.queue.sleeping.add(this);
  }

  /** Jobs may be available: claim (again). */
  wake(): void {
    if (this.#state === 'claiming') this.to('claiming-again');
    else if (this.#state === 'sleeping') this.#endSleep?.();
  }

  /** Sleeps until woken, until ms pass, or until a stop signal aborts; the state is left as it was. */
  async sleep(ms: number, stops: AbortSignal[]): Promise<void> {
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        for (const s of stops) s.removeEventListener('abort', done);
        this.#endSleep = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      for (const s of stops) s.addEventListener('abort', done, { once: true });
      this.#endSleep = done;
    });
  }

  /** Sets the waiter aside for an enqueue under way (see HandOffPlan). */
  reserve(): { settle(jobs: LeasedJob[] | undefined): void } {
    this.to('reserved');
    let resolve!: () => void;
    this.settled = new Promise<void>((r) => (resolve = r));
    return {
      settle: (jobs) => {
        this.handed = jobs && jobs.length > 0 ? jobs : undefined;
        resolve();
        this.#endSleep?.();
      },
    };
  }
}

/** The longest an enqueue waits for the requests it handed jobs to to answer first. */
const HANDED_ANSWER_WAIT_MS = 50;

export interface LongPollOptions {
  /** How often a queue with waiters is re-checked without a notification. */
  recheckMs: number;
  /** Requests waiting at once, across queues; one more is refused (429). Default no limit. */
  maxWaiting?: number;
  /** Whether a wait right after an empty claim sleeps without claiming (see the class comment). Default true. */
  knownEmpty?: boolean;
}

export class LongPoll implements HandOff {
  private readonly queues = new Map<string, WaitingQueue>();
  private readonly closed = new AbortController();
  /** Queues whose last claim found no more jobs: when that claim started (performance.now()). */
  private readonly emptySince = new Map<string, number>();
  /** Counts notify() calls: one during a claim means its empty answer may be stale already. */
  private announcements = 0;
  private waiterCount = 0;
  /** Jobs handed to waiting requests, to the resolver of their enqueue's wait for the answer (see plan). */
  private readonly handedAnswers = new Map<LeasedJob[], () => void>();

  constructor(
    private readonly db: Queryable,
    /** Tells every server's long polls that these queues have jobs (released ones). */
    private readonly announce: (queues: string[]) => void,
    private readonly options: LongPollOptions,
  ) {
    // Every sleeping waiter listens for the close: thousands of them are expected, not a leak.
    setMaxListeners(0, this.closed.signal);
  }

  /**
   * Claims up to limit jobs, waiting up to waitSeconds for them. [] when none came. When
   * `gone` aborts (the client left), jobs claimed for it are released, not left leased to
   * nobody until their lease runs out.
   */
  async next(queue: string, limit: number, waitSeconds: number, gone?: AbortSignal): Promise<LeasedJob[]> {
    const jobs = await this.wait(queue, limit, waitSeconds, gone);
    try {
      // Let the socket events already received run first: a hang-up that arrived while we
      // claimed (an in-process database answers within the same turn) shows only after them.
      if (gone && jobs.length > 0) await new Promise((resolve) => setImmediate(resolve));
      if (gone?.aborted && jobs.length > 0) {
        await this.release(jobs);
        return [];
      }
      return jobs;
    } finally {
      this.handedAnswers.get(jobs)?.();
    }
  }

  /** Undoes deliveries that never reached their client: back to their queues, no retry counted. */
  async release(jobs: LeasedJob[]): Promise<void> {
    if (jobs.length === 0) return;
    await releaseDeliveries(this.db, jobs);
    this.announce([...new Set(jobs.map((j) => j.queue))]);
  }

  private async wait(queue: string, limit: number, waitSeconds: number, gone?: AbortSignal): Promise<LeasedJob[]> {
    if (waitSeconds <= 0) return this.claim(queue, limit);
    if (this.waiterCount >= (this.options.maxWaiting ?? Infinity)) {
      throw new OverloadedError(`${this.waiterCount} requests are waiting already; retry later, or poll without wait`);
    }
    const deadline = Date.now() + waitSeconds * 1000;
    // Not AbortSignal.any: on Node 20 a composite signal can be garbage-collected with its
    // listeners while we wait on it, and the abort never arrives.
    const stops = gone ? [gone, this.closed.signal] : [this.closed.signal];
    const stopped = () => stops.some((s) => s.aborted);
    // Registered before the first claim, so a job stored during that claim is not missed.
    const waiter = this.add(queue, limit);
    let claim = !this.knownEmpty(queue);
    try {
      while (!stopped()) {
        if (claim) {
          const jobs = await this.claim(queue, limit);
          if (jobs.length > 0) {
            waiter.to('done');
            if (jobs.length === limit) this.wakeOne(queue, waiter);
            return jobs;
          }
        }
        claim = true;
        if (waiter.state === 'claiming-again') {
          waiter.to('claiming');
          continue;
        }
        const left = deadline - Date.now();
        if (left <= 0) break;
        // An abort that happened during the claim would never fire the sleep's listener.
        if (stopped()) break;
        waiter.to('sleeping');
        await waiter.sleep(left, stops);
        if (waiter.state === 'reserved') {
          // Its jobs are leased to this request already: answer with them, whatever else happened.
          await waiter.settled;
          if (waiter.handed) {
            waiter.to('done');
            return waiter.handed;
          }
        }
        waiter.to('claiming');
        if (Date.now() >= deadline) {
          // One last look: a job may have arrived exactly as the wait ran out.
          const jobs = stopped() ? [] : await this.claim(queue, limit);
          waiter.to('done');
          return jobs;
        }
      }
      // Leaving without jobs: a wake meant for this waiter may have been spent on it.
      if (waiter.state !== 'done') waiter.to('done');
      this.wakeOne(queue, waiter);
      return [];
    } finally {
      this.remove(queue, waiter);
    }
  }

  /** A notification: jobs may be available in queue. */
  notify(queue: string): void {
    this.announcements++;
    this.emptySince.delete(queue);
    this.wakeOne(queue);
  }

  /**
   * HandOff: for each queue of these jobs with a sleeping waiter, reserves it and names the
   * positions of the jobs to store leased to it (at most as many as it asked for). Only queues
   * whose jobs here all run now (no run_at): a job due later goes the usual way.
   */
  plan(jobs: NewJob[]): HandOffPlan | undefined {
    // Producers without waiting workers (the common case under load) pay for no bookkeeping.
    if (this.queues.size === 0) return undefined;
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
    const reserved = new Map<string, { settle(jobs: LeasedJob[] | undefined): void }>();
    const positions: number[] = [];
    for (const [queue, inQueue] of byQueue) {
      if (excluded.has(queue)) continue;
      const waiter = this.queues.get(queue)?.sleeping.values().next().value;
      if (!waiter) continue;
      reserved.set(queue, waiter.reserve());
      positions.push(...inQueue.slice(0, waiter.limit));
    }
    if (reserved.size === 0) return undefined;
    return {
      positions,
      settle: (delivered) => {
        const byQueueDelivered = new Map<string, LeasedJob[]>();
        for (const job of delivered) {
          const list = byQueueDelivered.get(job.queue) ?? [];
          list.push(job);
          byQueueDelivered.set(job.queue, list);
        }
        const answered: Array<Promise<void>> = [];
        for (const [queue, reservation] of reserved) {
          const jobs = byQueueDelivered.get(queue);
          if (jobs) answered.push(new Promise<void>((resolve) => this.handedAnswers.set(jobs, () => (this.handedAnswers.delete(jobs), resolve()))));
          reservation.settle(jobs);
        }
        return answered.length === 0 ? Promise.resolve() : this.afterAnswers(answered);
      },
      cancel() {
        for (const reservation of reserved.values()) reservation.settle(undefined);
      },
    };
  }

  /**
   * Resolves once the requests handed jobs have returned from next() and their routes (the
   * continuations of next()) have written the answers: those run before the next turn of the
   * event loop. Bounded, so that a producer never waits long on a worker's request.
   */
  private async afterAnswers(answered: Array<Promise<void>>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(answered), new Promise<void>((resolve) => (timer = setTimeout(resolve, HANDED_ANSWER_WAIT_MS)))]);
    clearTimeout(timer);
    await new Promise((resolve) => setImmediate(resolve));
  }

  /** Ends every wait (they answer with no jobs) and stops the re-check timers. */
  close(): void {
    this.closed.abort();
    for (const q of this.queues.values()) clearInterval(q.timer);
    this.queues.clear();
    this.waiterCount = 0;
  }

  /** How many requests are waiting now (for tests and metrics). */
  get waiting(): number {
    return this.waiterCount;
  }

  /** How many of them sleep, their claims done: those an enqueue may hand its jobs to (for tests). */
  get sleeping(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.sleeping.size;
    return n;
  }

  /** A claim, noting when it leaves the queue known empty (see the class comment). */
  private async claim(queue: string, limit: number): Promise<LeasedJob[]> {
    const started = performance.now();
    const announced = this.announcements;
    const jobs = await claimJobs(this.db, queue, limit);
    if (jobs.length < limit && this.announcements === announced) this.markEmpty(queue, started);
    else if (jobs.length === limit) this.emptySince.delete(queue);
    return jobs;
  }

  private knownEmpty(queue: string): boolean {
    if (this.options.knownEmpty === false) return false;
    const since = this.emptySince.get(queue);
    if (since === undefined) return false;
    if (performance.now() - since < this.options.recheckMs) return true;
    this.emptySince.delete(queue);
    return false;
  }

  private markEmpty(queue: string, since: number): void {
    this.emptySince.set(queue, since);
    // Queues polled once and never again must not pile up.
    if (this.emptySince.size > 1000) {
      const stale = performance.now() - this.options.recheckMs;
      for (const [q, t] of this.emptySince) if (t <= stale) this.emptySince.delete(q);
    }
  }

  private wakeOne(queue: string, except?: Waiter): void {
    const q = this.queues.get(queue);
    if (!q) return;
    // A sleeping waiter first; then one claiming (it claims once more). A reserved one is
    // spoken for. Each loop stops at the first that fits, the first or second it looks at.
    for (const w of q.sleeping) {
      if (w !== except) return w.wake();
    }
    for (const w of q.waiters) {
      if (w !== except && w.state === 'claiming') return w.wake();
    }
  }

  private add(queue: string, limit: number): Waiter {
    let q = this.queues.get(queue);
    if (!q) {
      const timer = setInterval(() => this.wakeOne(queue), this.options.recheckMs);
      timer.unref();
      q = { waiters: new Set(), sleeping: new Set(), timer };
      this.queues.set(queue, q);
    }
    const waiter = new Waiter(limit, q);
    q.waiters.add(waiter);
    this.waiterCount++;
    return waiter;
  }

  private remove(queue: string, waiter: Waiter): void {
    const q = this.queues.get(queue);
    if (!q || !q.waiters.delete(waiter)) return;
    q.sleeping.delete(waiter);
    this.waiterCount--;
    if (q.waiters.size === 0) {
      clearInterval(q.timer);
      this.queues.delete(queue);
    }
  }
}
