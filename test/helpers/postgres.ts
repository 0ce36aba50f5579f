import { randomUUID } from 'node:crypto';
import pg from 'pg';

/** Helpers for tests under test/postgres/, which run only when DATABASE_URL is set. */

export function databaseUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set: tests under test/postgres/ need a PostgreSQL');
  return url;
}

/** Runs one statement on url in a short-lived connection of its own (not the relay's). */
export async function sql<R extends pg.QueryResultRow = any>(url: string, text: string, params: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: url, application_name: 'relay-ts-tests' });
  await client.connect();
  try {
    return (await client.query<R>(text, params)).rows;
  } finally {
    await client.end();
  }
}

export interface FreshDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** A new, empty database on the server of DATABASE_URL; drop() removes it (with its connections). */
export async function freshDatabase(label = 'relay_test'): Promise<FreshDatabase> {
  const base = databaseUrl();
  const name = `${label}_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  await sql(base, `CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    async drop() {
      await sql(base, `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
    },
  };
}

/** Terminates the relay server connections (application_name 'relay-ts') to database name. */
export async function terminateRelayConnections(url: string, name: string): Promise<number> {
  const rows = await sql<{ ok: boolean }>(
    url,
    `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
     WHERE datname = $1 AND application_name = 'relay-ts' AND pid <> pg_backend_pid()`,
    [name],
  );
  return rows.filter((r) => r.ok).length;
}
