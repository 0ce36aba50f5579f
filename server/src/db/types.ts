/**
 * The small query interface the store runs on. Two adapters implement it: node-postgres
 * (a real PostgreSQL) and PGlite (embedded). The store never knows which one it has.
 */
export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

/** A statement with a stable name, so node-postgres can prepare it once per connection. */
export interface Statement {
  name: string;
  text: string;
}

export interface Queryable {
  query<R = Record<string, unknown>>(statement: Statement | string, params?: unknown[]): Promise<QueryResult<R>>;
  /** Runs a script of several statements (migrations); no parameters. */
  exec(sql: string): Promise<void>;
}

export type DatabaseKind = 'postgres' | 'pglite';

export interface Database extends Queryable {
  readonly kind: DatabaseKind;
  /** Runs fn in one transaction on one connection; commits when it resolves. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Calls onNotify for every NOTIFY on channel. On PostgreSQL this holds one dedicated
   * connection outside the pool. Returns a function that stops listening.
   */
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  /** The connection pool's connections and waiting queries, where there is a pool (PostgreSQL). */
  poolStats?(): { total: number; idle: number; waiting: number };
  close(): Promise<void>;
}
