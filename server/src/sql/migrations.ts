import type { Queryable } from '../db/index.js';

// Any constant works; it only has to be the same in every relay-ts instance.
const MIGRATION_LOCK = 727_274_001;

/** Waits for the migration lock, held until the transaction ends: instances starting together queue here. */
export async function lockMigrations(tx: Queryable): Promise<void> {
  await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
  await tx.exec(`CREATE TABLE IF NOT EXISTS relay_schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`);
}

export async function appliedMigrations(tx: Queryable): Promise<Set<number>> {
  const { rows } = await tx.query<{ version: number }>('SELECT version FROM relay_schema_migrations');
  return new Set(rows.map((r) => r.version));
}

export async function recordMigration(tx: Queryable, version: number, name: string): Promise<void> {
  await tx.query('INSERT INTO relay_schema_migrations (version, name) VALUES ($1, $2)', [version, name]);
}
