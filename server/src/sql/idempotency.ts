import type { Queryable, Statement } from '../db/index.js';
import { json } from './rows.js';

/** An answer as it is remembered for its Idempotency-Key. */
export interface RememberedAnswer {
  fingerprint: string;
  status: number;
  /** JSON text, or null for an answer without a body. */
  body: string | null;
}

export interface AnswerToRemember extends RememberedAnswer {
  scope: string;
  key: string;
}

const FIND: Statement = {
  name: 'relay_idempotency_find',
  // Params: $1 scope, $2 key, $3 the window in seconds. Returns the answer remembered for the
  // key within the window, or no row.
  text: `SELECT fingerprint, status, body FROM relay_idempotency_keys
         WHERE scope = $1 AND key = $2 AND created_at > now() - $3::float8 * interval '1 second'`,
};

const REMEMBER: Statement = {
  name: 'relay_idempotency_remember',
  // Params: $1 [{scope, key, fingerprint, status, body}] as JSON, $2 the window in seconds.
  // Stores each answer; a row of an expired key is replaced, a live one is left alone (its
  // request came first). Returns (scope, key) of each answer stored: a key missing from them
  // was taken already, and the caller rolls back.
  text: `INSERT INTO relay_idempotency_keys AS k (scope, key, fingerprint, status, body)
         SELECT a.scope, a.key, a.fingerprint, a.status, a.body
         FROM jsonb_to_recordset($1::jsonb) AS a(scope text, key text, fingerprint text, status integer, body text)
         ON CONFLICT (scope, key) DO UPDATE
           SET fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status, body = EXCLUDED.body, created_at = now()
           WHERE k.created_at <= now() - $2::float8 * interval '1 second'
         RETURNING k.scope, k.key`,
};

const PURGE: Statement = {
  name: 'relay_idempotency_purge',
  // Params: $1 the window in seconds, $2 how many at the most. Deletes keys older than the
  // window, oldest first, in one bounded batch. Returns how many.
  text: `WITH old AS (
           SELECT scope, key FROM relay_idempotency_keys
           WHERE created_at <= now() - $1::float8 * interval '1 second'
           ORDER BY created_at
           LIMIT $2
           FOR UPDATE SKIP LOCKED
         )
         DELETE FROM relay_idempotency_keys k USING old
         WHERE k.scope = old.scope AND k.key = old.key`,
};

export async function findAnswer(db: Queryable, scope: string, key: string, windowSeconds: number): Promise<RememberedAnswer | undefined> {
  const { rows } = await db.query<RememberedAnswer>(FIND, [scope, key, windowSeconds]);
  return rows[0];
}

/** Stores the answers; returns those whose key was taken already (then roll back). */
export async function rememberAnswers(db: Queryable, answers: AnswerToRemember[], windowSeconds: number): Promise<AnswerToRemember[]> {
  const { rows } = await db.query<{ scope: string; key: string }>(REMEMBER, [json(answers), windowSeconds]);
  if (rows.length === answers.length) return [];
  const stored = new Set(rows.map((r) => `${r.scope}\u0000${r.key}`));
  return answers.filter((a) => !stored.has(`${a.scope}\u0000${a.key}`));
}

/** Deletes up to `limit` keys older than the window; returns how many. */
export async function purgeExpiredKeys(db: Queryable, windowSeconds: number, limit: number): Promise<number> {
  const { rowCount } = await db.query(PURGE, [windowSeconds, limit]);
  return rowCount;
}
