import type { QueueSummary } from '@relay-ts/client';

/** A waiting job older than this makes its queue a problem: nothing seems to take its jobs. */
export const STALE_SECONDS = 60;

/** Why a queue needs looking at; empty when it does not. */
export function problemsOf(q: QueueSummary): string[] {
  const out: string[] = [];
  if (q.failed > 0) out.push('failed jobs');
  if (q.paused) out.push('paused');
  if ((q.oldest_waiting_seconds ?? 0) > STALE_SECONDS) out.push('jobs waiting long');
  return out;
}

/** Problem queues first (the most problems first), then by name. */
export function byConcern(a: QueueSummary, b: QueueSummary): number {
  return problemsOf(b).length - problemsOf(a).length || (a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : 0);
}
