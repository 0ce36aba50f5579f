import type { Logger } from 'pino';
import type { Operations } from './operations.js';
import type { Store } from './store.js';

export interface Reaper {
  stop(): Promise<void>;
}

/**
 * Every intervalSeconds, returns expired leases to their queues (or to the failed jobs), then
 * does the operations' upkeep (counts, retention). Runs are never concurrent within one
 * process; across processes the SQL keeps them apart.
 */
export function startReaper(
  store: Store,
  operations: Operations,
  intervalSeconds: number,
  logger: Logger,
  /** Told when each run ends (metrics); startedAt in ms since the epoch. */
  ran?: (startedAt: number, seconds: number) => void,
): Reaper {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let stopped = false;

  const tick = async () => {
    const startedAt = Date.now();
    const started = performance.now();
    try {
      const { retried, failed } = await store.reapExpired();
      if (retried || failed) logger.debug({ retried, failed }, 'expired leases reaped');
      const { failedPurged } = await operations.maintain();
      if (failedPurged) logger.info({ failedPurged }, 'failed jobs past their retention purged');
      // Only a run that finished counts: a reaper that keeps failing must show as stalled.
      ran?.(startedAt, (performance.now() - started) / 1000);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'reaper run failed; retrying next interval');
    }
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = tick().finally(schedule);
    }, intervalSeconds * 1000);
  };
  schedule();

  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
