import type { QueueSummary } from '@relay-ts/client';

/**
 * How a queue's load moves, for the overview. The API has no completion counter, so what
 * this source can tell from successive GET /v1/queues snapshots is the net change of the
 * waiting and in-flight counts per minute, not jobs done per minute. A source reading the
 * server's metrics can take its place behind the same interface and label.
 */
export interface QueueRates {
  /** Net change of waiting jobs per minute (negative: the queue drains). */
  waitingPerMinute: number;
  /** Net change of jobs in flight per minute. */
  inFlightPerMinute: number;
  /** Over how many seconds of observation. */
  windowSeconds: number;
}

export interface ThroughputSource {
  /** What the figures are, as the column headers say it. */
  readonly label: string;
  observe(queues: readonly QueueSummary[], atMs: number): void;
  rates(queue: string): QueueRates | undefined;
}

interface Sample {
  atMs: number;
  waiting: number;
  inFlight: number;
}

/** Differences between the snapshots of the last minutes, as the page polled them. */
export class SnapshotDeltas implements ThroughputSource {
  readonly label = 'net change per minute, from the counts the page has seen';
  readonly #samples = new Map<string, Sample[]>();

  constructor(
    private readonly windowMs = 5 * 60_000,
    /** Fewer seconds than this say nothing yet. */
    private readonly minimumMs = 10_000,
  ) {}

  observe(queues: readonly QueueSummary[], atMs: number): void {
    const seen = new Set<string>();
    for (const q of queues) {
      seen.add(q.queue);
      const samples = this.#samples.get(q.queue) ?? [];
      samples.push({ atMs, waiting: q.waiting, inFlight: q.in_flight });
      while (samples.length > 2 && atMs - samples[0]!.atMs > this.windowMs) samples.shift();
      this.#samples.set(q.queue, samples);
    }
    // A queue that left the list holds nothing: it drained to zero.
    for (const [name, samples] of this.#samples) {
      if (!seen.has(name)) samples.push({ atMs, waiting: 0, inFlight: 0 });
    }
  }

  rates(queue: string): QueueRates | undefined {
    const samples = this.#samples.get(queue);
    if (!samples || samples.length < 2) return undefined;
    const first = samples[0]!;
    const last = samples[samples.length - 1]!;
    const elapsed = last.atMs - first.atMs;
    if (elapsed < this.minimumMs) return undefined;
    const perMinute = (delta: number) => (delta * 60_000) / elapsed;
    return { waitingPerMinute: perMinute(last.waiting - first.waiting), inFlightPerMinute: perMinute(last.inFlight - first.inFlight), windowSeconds: elapsed / 1000 };
  }
}
