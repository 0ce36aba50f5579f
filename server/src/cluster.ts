import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';

/**
 * `relay-server --processes N`: N server processes on one port (node:cluster hands each new
 * connection to one of them), each with its own pool, sharing nothing but PostgreSQL. Long
 * polls in one process hear of jobs stored by another as they hear of another server's: by
 * NOTIFY. This primary process serves no request: it starts the servers, replaces one that
 * dies, and stops them all on SIGTERM or SIGINT.
 */

/** A message from the primary: finish the requests in flight and exit. */
export const SHUTDOWN_MESSAGE = 'relay:shutdown';

/** How many processes `--processes` asks for: a number, or `auto` for one per core. */
export function processCount(value: string): number {
  if (value.trim().toLowerCase() === 'auto') return availableParallelism();
  if (!/^\s*\d+\s*$/.test(value) || Number(value) < 1 || Number(value) > 1024) throw new Error('must be a number of processes from 1 to 1024, or auto');
  return Number(value);
}

/** Runs the primary until its servers have stopped; resolves with the exit status to end with. */
export function runPrimary(count: number, logger: Logger): Promise<number> {
  return new Promise((resolve) => {
    const listening = new Set<Worker>();
    let stopping = false;
    let status = 0;
    let announced = false;

    const fork = () => void cluster.fork();
    const stopAll = (exitStatus: number) => {
      if (!stopping) status = exitStatus;
      stopping = true;
      for (const worker of Object.values(cluster.workers ?? {})) {
        if (worker && worker.isConnected()) worker.send(SHUTDOWN_MESSAGE);
        else worker?.process.kill('SIGTERM');
      }
    };

    cluster.on('listening', (worker, address) => {
      listening.add(worker);
      if (!announced && listening.size === count) {
        announced = true;
        const host = address.address === null || address.address === undefined ? '127.0.0.1' : address.address;
        const url = `http://${host}:${address.port}`;
        logger.info({ url, processes: count, database: 'postgres' }, `relay-server: ${count} processes listening on ${url}`);
      }
    });
    cluster.on('exit', (worker, code, signal) => {
      const wasListening = listening.delete(worker);
      if (stopping) {
        if (code !== 0) status = status || 1;
        if (Object.keys(cluster.workers ?? {}).length === 0) resolve(status);
        return;
      }
      if (!wasListening) {
        // A start-up failure (a bad database URL, a port in use): every process would fail alike,
        // and replacing it would only fail again.
        logger.error({ pid: worker.process.pid, code, signal }, 'a server process failed to start: stopping the others');
        stopAll(code || 1);
        if (Object.keys(cluster.workers ?? {}).length === 0) resolve(status);
        return;
      }
      logger.error({ pid: worker.process.pid, code, signal }, 'a server process died: starting another (its jobs in flight come back when their leases expire)');
      fork();
    });

    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      if (signals > 1) {
        // A second signal is the operator insisting: stop waiting for requests in flight.
        logger.warn({ signal }, 'second signal: killing the server processes');
        for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL');
        resolve(1);
        return;
      }
      logger.info({ signal }, 'shutting down the server processes');
      stopAll(0);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);

    for (let i = 0; i < count; i++) fork();
  });
}
