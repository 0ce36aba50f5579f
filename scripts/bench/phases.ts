/** What the phases of both systems return, and helpers they share. */
import { performance } from 'node:perf_hooks';

export interface TimedRun {
  jobs: number;
  /** Wall-clock seconds from the first request/statement to the last one answered. */
  seconds: number;
}

export interface ProcessRun extends TimedRun {
  tally: JobTally;
}

export interface LatencyRun extends ProcessRun {
  /** Milliseconds from just before the enqueue was sent to the start of processing, per job. */
  samples: number[];
}

/** Counts how often each job id ("0".."n-1") was processed: every one exactly once, or the phase fails. */
export class JobTally {
  private readonly seen: Uint16Array;
  count = 0;
  unknown = 0;

  constructor(readonly n: number) {
    this.seen = new Uint16Array(n);
  }

  processed(id: string | number): void {
    this.count++;
    const i = Number(id);
    if (Number.isInteger(i) && i >= 0 && i < this.n) this.seen[i]!++;
    else this.unknown++;
  }

  /** undefined when every job was processed exactly once; else what went wrong. */
  problem(): string | undefined {
    let missing = 0;
    let repeated = 0;
    for (const c of this.seen) {
      if (c === 0) missing++;
      else if (c > 1) repeated++;
    }
    if (missing === 0 && repeated === 0 && this.unknown === 0) return undefined;
    return `${missing} of ${this.n} jobs never processed, ${repeated} processed more than once, ${this.unknown} unknown ids`;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Calls fire(0..n-1) at `rate` per second, on schedule from the start (no drift). */
export async function pace(n: number, rate: number, fire: (k: number) => void): Promise<void> {
  const start = performance.now();
  const interval = 1000 / rate;
  for (let k = 0; k < n; k++) {
    const wait = start + k * interval - performance.now();
    if (wait >= 1) await sleep(wait);
    fire(k);
  }
}

/** Resolves as promise does, or rejects once ms have passed, naming what did not finish. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
