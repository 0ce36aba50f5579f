/**
 * How many jobs the worker leases ahead of its free slots with `prefetch: 'auto'`.
 *
 * A slot that frees waits a poll's round trip for its next job unless a job is already in
 * hand. Enough jobs in hand cover that round trip: as many as the slots finish meanwhile, the
 * round trip over a job's handler time, per slot; twice that, so that a round trip longer than
 * the average (a busy host, a slow database) still finds work waiting. Two bounds:
 * - the lease: a job waiting for a slot would wait about (jobs ahead / concurrency) handler
 *   times; ahead stays within a quarter of the shortest lease seen, so that jobs sit waiting in
 *   one worker no longer than that while other workers could have run them;
 * - the request: at most `MAX_AHEAD` jobs, what one poll may be answered with at the most.
 * Long jobs (a handler far longer than a round trip) get none: a job in hand gains them
 * nothing and keeps the job from other workers.
 *
 * The round trip is measured on polls answered at once with every job they asked for (a
 * backlog: the server had them ready, so the time is the network's and the server's, not a
 * wait for new jobs). Until both figures are known, nothing is leased ahead.
 */

/** The most jobs leased ahead: the server's default answer limit for one poll. */
export const MAX_AHEAD = 1000;

/** The weight of a new sample in the running averages. */
const WEIGHT = 0.2;

export class AutoPrefetch {
  #roundTripMs: number | undefined;
  #handlerMs: number | undefined;
  #shortestLeaseMs = Infinity;

  constructor(private readonly concurrency: number) {}

  /** A poll answered at once with all it asked for took this long. */
  roundTrip(ms: number): void {
    this.#roundTripMs = average(this.#roundTripMs, ms);
  }

  /** A handler returned after this long. */
  handled(ms: number): void {
    this.#handlerMs = average(this.#handlerMs, ms);
  }

  /** A job was leased with this lease (its `timeout`, in ms). */
  leased(leaseMs: number): void {
    if (leaseMs < this.#shortestLeaseMs) this.#shortestLeaseMs = leaseMs;
  }

  /** How many jobs to hold beyond the slots now. */
  get ahead(): number {
    if (this.#roundTripMs === undefined || this.#handlerMs === undefined) return 0;
    // A handler that returns at once still takes the event loop's time: never divide by 0.
    const handlerMs = Math.max(this.#handlerMs, 0.01);
    const coverRoundTrip = Math.round((2 * this.concurrency * this.#roundTripMs) / handlerMs);
    const withinLease = Math.floor((this.concurrency * (this.#shortestLeaseMs / 4)) / handlerMs);
    return Math.max(0, Math.min(coverRoundTrip, withinLease, MAX_AHEAD));
  }
}

function average(current: number | undefined, sample: number): number {
  return current === undefined ? sample : current + WEIGHT * (sample - current);
}
