import { randomBytes } from 'node:crypto';
import type { Logger } from './logger.js';

/** The channel on which relay servers tell each other that a queue has jobs. */
export const JOBS_CHANNEL = 'relay_jobs';

export interface NotifierOptions {
  /** Sends NOTIFYs; undefined when no other server can share the database (PGlite). */
  sendRemote?: (channel: string, payloads: string[]) => Promise<void>;
  /**
   * The least time from one NOTIFY statement to the next, ms. A lone change is announced at
   * once; under load, what becomes available meanwhile waits for the next turn.
   */
  minIntervalMs: number;
  logger: Logger;
}

/**
 * Tells long polls that queues have jobs: this server's own waiters at once, in-process, and
 * other servers on the same PostgreSQL through NOTIFY. The NOTIFYs are sent after the change
 * committed, one statement at a time and at most one per minIntervalMs, coalescing whatever
 * queues became available meanwhile: under load a NOTIFY every few milliseconds rather than
 * one per enqueue (sent back to back they were nearly one statement per job, as many as the
 * inserts). They are hints: one lost in a crash delays a job by at most the long poll's
 * re-check interval.
 */
export class Notifier {
  private readonly id = randomBytes(6).toString('hex');
  private readonly pending = new Set<string>();
  private sending: Promise<void> | undefined;
  private lastSentAt = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners: Array<(queue: string) => void> = [];

  constructor(private readonly options: NotifierOptions) {}

  /** Calls listener for every queue announced here or by another server (this server's long polls). */
  subscribe(listener: (queue: string) => void): void {
    this.listeners.push(listener);
  }

  private wakeLocal(queue: string): void {
    for (const listener of this.listeners) listener(queue);
  }

  jobsAvailable(queues: string[]): void {
    for (const queue of queues) {
      this.wakeLocal(queue);
      if (this.options.sendRemote) this.pending.add(queue);
    }
    this.send();
  }

  /** A NOTIFY arrived; our own come back to us too and were handled already. */
  received(payload: string): void {
    const sep = payload.indexOf(':');
    if (sep < 0 || payload.slice(0, sep) === this.id) return;
    this.wakeLocal(payload.slice(sep + 1));
  }

  /** Sends what is pending now, without waiting for its turn, and waits for it. */
  async flush(): Promise<void> {
    for (;;) {
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
        this.lastSentAt = -Infinity;
        this.send();
      }
      if (!this.sending) return;
      await this.sending;
    }
  }

  private send(): void {
    const { sendRemote, minIntervalMs } = this.options;
    if (!sendRemote || this.sending || this.timer || this.pending.size === 0) return;
    const wait = this.lastSentAt + minIntervalMs - performance.now();
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.send();
      }, wait);
      return;
    }
    this.lastSentAt = performance.now();
    const payloads = [...this.pending].map((queue) => `${this.id}:${queue}`);
    this.pending.clear();
    this.sending = sendRemote(JOBS_CHANNEL, payloads)
      .catch((err) => this.options.logger.warn({ err: (err as Error).message }, 'could not notify other servers'))
      .finally(() => {
        this.sending = undefined;
        this.send();
      });
  }
}
