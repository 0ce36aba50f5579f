import type { Logger } from 'pino';
import type { Config } from '../config.js';
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
  return openPGlite(config.dataDir);
}
