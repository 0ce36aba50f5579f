import { readdir, readFile } from 'node:fs/promises';
import type { Database } from './db/index.js';

const MIGRATIONS_DIR = new URL('../migrations/', import.meta.url);
// Any constant works; it only has to be the same in every relay-ts instance.
const MIGRATION_LOCK = 727_274_001;

/**
 * Applies the numbered SQL files in migrations/ that this database has not seen, in order,
 * in one transaction holding an advisory lock: instances starting together queue on the lock
 * and the later ones find nothing left to do.
 */
export async function migrate(db: Database): Promise<number[]> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d+_.+\.sql$/.test(f)).sort();
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await tx.exec(`CREATE TABLE IF NOT EXISTS relay_schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await tx.query<{ version: number }>('SELECT version FROM relay_schema_migrations');
    const applied = new Set(rows.map((r) => r.version));
    const done: number[] = [];
    for (const file of files) {
      const version = Number.parseInt(file, 10);
      if (applied.has(version)) continue;
      await tx.exec(await readFile(new URL(file, MIGRATIONS_DIR), 'utf8'));
      await tx.query('INSERT INTO relay_schema_migrations (version, name) VALUES ($1, $2)', [version, file]);
      done.push(version);
    }
    return done;
  });
}
