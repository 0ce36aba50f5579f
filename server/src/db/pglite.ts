import { PGlite, types } from '@electric-sql/pglite';
import type { Database, QueryResult, Queryable, Statement } from './types.js';

type PGliteQueryable = Pick<PGlite, 'query' | 'exec'>;

function adapt(db: PGliteQueryable): Queryable {
  return {
    async query<R>(statement: Statement | string, params: unknown[] = []): Promise<QueryResult<R>> {
      const text = typeof statement === 'string' ? statement : statement.text;
      const result = await db.query<R>(text, params);
      return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
    },
    async exec(sql: string): Promise<void> {
      await db.exec(sql);
    },
  };
}

/**
 * PGlite is one Postgres backend in this process: it runs one statement at a time, so each
 * query is its own transaction and a transaction() holds the database exclusively. That is
 * what keeps separate HTTP requests from mixing in one session (the pglite-socket trap).
 * dataDir is a directory, or memory:// for a throwaway database.
 */
export async function openPGlite(dataDir: string): Promise<Database> {
  // timestamptz stays text for time.ts: PGlite's Date parser moves years 0001-0099 by 1900 years.
  const db = await PGlite.create(dataDir, { parsers: { [types.TIMESTAMPTZ]: (text: string) => text } });
  await db.exec("SET TimeZone = 'UTC'; SET DateStyle = 'ISO'");
  const direct = adapt(db);
  return {
    kind: 'pglite',
    query: direct.query,
    exec: direct.exec,
    transaction: (fn) => db.transaction((tx) => fn(adapt(tx))),
    async listen(channel, onNotify) {
      return db.listen(channel, onNotify);
    },
    async close() {
      await db.close();
    },
  };
}
