import pg from 'pg';
import type { Logger } from 'pino';
import type { Database, QueryResult, Queryable, Statement } from './types.js';

export interface PostgresOptions {
  connectionString: string;
  maxConnections: number;
  /** Server-side statement_timeout, ms. */
  statementTimeoutMs: number;
  /** How long a request waits for a pool connection before it gets a 429, ms. */
  connectionTimeoutMs: number;
  logger: Logger;
}

const TIMESTAMPTZ_OID = 1184;

// timestamptz stays text (time.ts reads it to the microsecond; a Date keeps milliseconds and
// misreads early years). Per pool, not pg.types.setTypeParser: that would change every pg user
// in the process.
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === TIMESTAMPTZ_OID ? (text: string) => text : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

function adapt(client: pg.Pool | pg.PoolClient): Queryable {
  return {
    async query<R>(statement: Statement | string, params: unknown[] = []): Promise<QueryResult<R>> {
      const config = typeof statement === 'string' ? { text: statement, values: params } : { ...statement, values: params };
      const result = await client.query(config);
      return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
    },
    async exec(sql: string): Promise<void> {
      await client.query(sql);
    },
  };
}

export async function openPostgres(options: PostgresOptions): Promise<Database> {
  const { connectionString, logger } = options;
  const connection = {
    connectionString,
    statement_timeout: options.statementTimeoutMs,
    // A server that vanished without closing the socket must not hang a request forever.
    query_timeout: options.statementTimeoutMs + 1_000,
    connectionTimeoutMillis: options.connectionTimeoutMs,
    keepAlive: true,
    application_name: 'relay-ts',
    // The text time.ts reads: ISO dates, in UTC (it still converts any other offset).
    options: '-c TimeZone=UTC -c DateStyle=ISO',
    types,
  };
  const pool = new pg.Pool({ ...connection, max: options.maxConnections, idleTimeoutMillis: 30_000 });
  // An idle client that loses its server (database restart) emits here; without a listener
  // that would crash the process. The pool drops the client and reconnects on demand.
  pool.on('error', (err) => logger.warn({ err: err.message }, 'idle database connection lost'));
  const pooled = adapt(pool);

  return {
    kind: 'postgres',
    query: pooled.query,
    exec: pooled.exec,
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      // A connection lost between two statements of the transaction (the database restarted,
      // the network reset it) emits 'error' on the client while no query is there to take it:
      // without a listener here that would end the process. The next statement then fails
      // (a 429, retryable), and the broken client is dropped from the pool, not reused.
      let lost: Error | undefined;
      const onError = (err: Error) => {
        lost ??= err;
        logger.warn({ err: err.message }, 'database connection lost in a transaction');
      };
      client.on('error', onError);
      try {
        await client.query('BEGIN');
        const result = await fn(adapt(client));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.off('error', onError);
        client.release(lost);
      }
    },
    async listen(channel, onNotify) {
      let current: pg.Client | undefined;
      let retry: NodeJS.Timeout | undefined;
      let stopped = false;
      // Notifications sent while this connection is down are lost; listeners re-check on a
      // timer for exactly that reason. Here we only make sure the connection comes back.
      const reconnectSoon = () => {
        if (stopped || retry) return;
        retry = setTimeout(() => {
          retry = undefined;
          connect().catch((err) => {
            logger.warn({ err: (err as Error).message }, 'notification connection failed; retrying');
            reconnectSoon();
          });
        }, 1000);
      };
      const connect = async () => {
        const client = new pg.Client(connection);
        client.on('notification', (msg) => onNotify(msg.payload ?? ''));
        client.on('error', (err) => logger.warn({ err: err.message }, 'notification connection lost'));
        client.on('end', () => {
          if (current === client) current = undefined;
          reconnectSoon();
        });
        await client.connect();
        await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
        current = client;
      };
      await connect();
      return async () => {
        stopped = true;
        clearTimeout(retry);
        await current?.end().catch(() => undefined);
      };
    },
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    async close() {
      await pool.end();
    },
  };
}
