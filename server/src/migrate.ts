import { readdir, readFile } from 'node:fs/promises';
import type { Database } from './db/index.js';
import { appliedMigrations, lockMigrations, recordMigration } from './sql/migrations.js';

const MIGRATIONS_DIR = new URL('../migrations/', import.meta.url);

/**
 * Applies the numbered SQL files in migrations/ that this database has not seen, in order,
 * in one transaction holding an advisory lock: instances starting together queue on the lock
 * and the later ones find nothing left to do.
 */
export async function migrate(db: Database): Promise<number[]> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d+_.+\.sql$/.test(f)).sort();
  return db.transaction(async (tx) => {
    await lockMigrations(tx);
    const applied = await appliedMigrations(tx);
    const done: number[] = [];
    for (const file of files) {
      const version = Number.parseInt(file, 10);
      if (applied.has(version)) continue;
      await tx.exec(await readFile(new URL(file, MIGRATIONS_DIR), 'utf8'));
      await recordMigration(tx, version, file);
      done.push(version);
    }
    return done;
  });
}
