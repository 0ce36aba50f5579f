/** Waiting between polls: exponential backoff with jitter, and a sleep that a stop cuts short. */

/**
 * The delay before poll number `streak` of a run of empty answers (or errors), 1 for the
 * first: `min(max, base × 2^(streak−1))`, of which a random half is taken off ("equal
 * jitter"). The lower half is kept so that a delay is never close to zero: nothing spins.
 */
export function equalJitterBackoff(streak: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(streak - 1, 52)));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** The longest delay setTimeout takes; a longer one (or Infinity) would fire after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** `ms` as a delay setTimeout honours: at most MAX_TIMER_MS (about 24.8 days). */
export function timerMs(ms: number): number {
  return Number.isNaN(ms) ? 0 : Math.min(Math.max(0, ms), MAX_TIMER_MS);
}

/** Resolves after `ms`, or at once when `signal` aborts (it never rejects). */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, timerMs(ms));
    signal?.addEventListener('abort', done, { once: true });
  });
}
