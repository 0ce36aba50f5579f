import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { lockableDirectory, lockDataDir } from './data-dir-lock.js';
import { openPGlite } from './pglite.js';
import { openPostgres } from './postgres.js';
import type { Database } from './types.js';

export type { Database, DatabaseKind, Queryable, QueryResult, Statement } from './types.js';

export async function openDatabase(config: Config, logger: Logger): Promise<Database> {
  if (config.databaseUrl) {
    return openPostgres({
      connectionString: config.databaseUrl,
      maxConnections: config.maxConnections,
      statementTimeoutMs: config.statementTimeoutMs,
      connectionTimeoutMs: config.connectionTimeoutMs,
      logger,
    });
  }
  return openEmbedded(config.dataDir);
}

/** PGlite in dataDir, held by this process alone until close (see data-dir-lock.ts). */
async function openEmbedded(dataDir: string): Promise<Database> {
  const dir = lockableDirectory(dataDir);
  const unlock = dir === undefined ? async () => undefined : await lockDataDir(dir);
  let db: Database;
  try {
    db = await openPGlite(dataDir);
  } catch (err) {
    await unlock();
    throw err;
  }
  const close = db.close.bind(db);
  db.close = async () => {
    try {
      await close();
    } finally {
      await unlock();
    }
  };
  return db;
}
