import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createApp } from './app.js';
import type { Config } from './config.js';
import { openDatabase } from './db/index.js';
import type { Logger } from './logger.js';
import { migrate } from './migrate.js';
import { startReaper } from './reaper.js';
import { Store } from './store.js';

export interface RelayServer {
  /** e.g. http://127.0.0.1:8080 */
  url: string;
  port: number;
  databaseKind: 'postgres' | 'pglite';
  /** Stops accepting, finishes requests in flight, stops the reaper, closes the database. */
  close(): Promise<void>;
}

export async function startServer(config: Config, logger: Logger): Promise<RelayServer> {
  const db = await openDatabase(config, logger);
  try {
    await migrate(db);
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
  const store = new Store(db);
  const app = createApp({
    store,
    databaseKind: db.kind,
    maxBody: config.maxBody,
    validateResponses: config.validateResponses,
    logger,
  });

  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(config.port, config.host, (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  const reaper = startReaper(store, config.reapInterval, logger);
  const { port } = server.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    port,
    databaseKind: db.kind,
    close() {
      closing ??= (async () => {
        const drained = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        await drained;
        await reaper.stop();
        await db.close();
      })();
      return closing;
    },
  };
}
