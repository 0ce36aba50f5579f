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

/** An expired key's row may be taken again; a live one stays with the request that came first. */
const ON_KEY_CONFLICT = (windowParam: string) => `ON CONFLICT (scope, key) DO UPDATE
           SET fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status, body = EXCLUDED.body, created_at = now()
           WHERE k.created_at <= now() - ${windowParam}::float8 * interval '1 second'`;

const REMEMBER: Statement = {
  name: 'relay_idempotency_remember',
  // Params: $1 [{scope, key, fingerprint, status, body}] as JSON, $2 the window in seconds.
  // Stores each answer. Returns (scope, key) of each answer stored: a key missing from them
  // was taken already, and the caller rolls back.
  text: `INSERT INTO relay_idempotency_keys AS k (scope, key, fingerprint, status, body)
         SELECT a.scope, a.key, a.fingerprint, a.status, a.body
         FROM jsonb_to_recordset($1::jsonb) AS a(scope text, key text, fingerprint text, status integer, body text)
         ${ON_KEY_CONFLICT('$2')}
         RETURNING k.scope, k.key`,
};

/**
 * For a statement that has its effect and remembers its answers at once: each keyed item's two
 * possible answers, known before the statement runs, of which the statement picks one by the
 * item's outcome. `ord` is the item's 1-based position in the statement.
 */
export interface KeyedItemAnswers {
  ord: number;
  scope: string;
  key: string;
  fingerprint: string;
  ok_status: number;
  ok_body: string | null;
  err_status: number;
  err_body: string | null;
}

/** The recordset of KeyedItemAnswers given as JSON. */
export const KEYED_ANSWER_COLUMNS = 'ord bigint, scope text, key text, fingerprint text, ok_status integer, ok_body text, err_status integer, err_body text';

/**
 * The columns of an answer to remember, picked from a KeyedItemAnswers row `a` by `o.ok`, the
 * outcome of the row's item (true: its success).
 */
export const PICKED_ANSWER = `a.scope, a.key, a.fingerprint,
                  CASE WHEN o.ok THEN a.ok_status ELSE a.err_status END AS status,
                  CASE WHEN o.ok THEN a.ok_body ELSE a.err_body END AS body`;

/**
 * The CTE `remembered` that stores the rows of a CTE `answers` (scope, key, fingerprint, status,
 * body) given before it, and the check that raises SQLSTATE RLK01 (migration 0006) when a key
 * was taken already: the statement then leaves nothing behind. The check must be selected in
 * the statement's result, so that it runs even when the effect changed no row.
 */
export const rememberAnswersCte = (windowParam: string) => `remembered AS (
           INSERT INTO relay_idempotency_keys AS k (scope, key, fingerprint, status, body)
           SELECT scope, key, fingerprint, status, body FROM answers
           ${ON_KEY_CONFLICT(windowParam)}
           RETURNING k.scope, k.key)`;
export const KEYS_TAKEN_CHECK = `relay_keys_taken((
           SELECT jsonb_agg(jsonb_build_array(a.scope, a.key)) FROM answers a
           WHERE NOT EXISTS (SELECT 1 FROM remembered r WHERE r.scope = a.scope AND r.key = a.key)))`;

/** The keys named by a statement's RLK01 error (see KEYS_TAKEN_CHECK), or undefined for any other error. */
export function takenKeys(err: unknown): Array<{ scope: string; key: string }> | undefined {
  const e = err as { code?: unknown; detail?: unknown };
  if (e === null || typeof e !== 'object' || e.code !== 'RLK01' || typeof e.detail !== 'string') return undefined;
  return (JSON.parse(e.detail) as Array<[string, string]>).map(([scope, key]) => ({ scope, key }));
}

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
