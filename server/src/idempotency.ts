import { createHash } from 'node:crypto';
import { inBatches } from './batches.js';
import type { Queryable } from './db/index.js';
import { IdempotencyKeyInUseError, IdempotencyKeyReusedError, toProblem, type RelayError } from './errors.js';
import { findAnswer, purgeExpiredKeys, rememberAnswers, takenKeys, type AnswerToRemember, type KeyedItemAnswers, type RememberedAnswer } from './sql/idempotency.js';

/**
 * Idempotency-Key: within a window, the same key with the same request gets the first answer
 * again and has no second effect; with another request it is refused (422); while the first
 * is still being processed here, it is refused (409, retry it). The answer is stored in the
 * transaction of the effect (see Store), so either both exist or neither; two servers racing
 * on one key are ordered by the table's primary key, and the loser replays the winner.
 */

/** A key as a request carries it, with what makes two requests "the same". */
export interface IdempotencyKey {
  /** The operation (the key's namespace). */
  scope: string;
  key: string;
  fingerprint: string;
  /** The status of the operation's success (its body is the operation's result). */
  successStatus: number;
}

/** Names a key: its scope and the key. */
export const keyId = (k: { scope: string; key: string }) => `${k.scope}\u0000${k.key}`;

/**
 * Thrown inside the effect's transaction when a key it carries was taken already (by an earlier
 * request, or by another server's meanwhile): the transaction rolls back. `taken` names the
 * keys (keyId), so that a shared statement can run again without their requests.
 */
export class KeyTakenError extends Error {
  override name = 'KeyTakenError';
  constructor(readonly taken: ReadonlySet<string>) {
    super('an Idempotency-Key of this statement was taken already');
  }
}

/** A hash of the method, operation, query and body: equal requests, equal fingerprints. */
export function fingerprint(method: string, scope: string, query: Record<string, unknown>, body: unknown): string {
  const params = Object.keys(query)
    .sort()
    .map((k) => `${k}=${JSON.stringify(query[k])}`)
    .join('&');
  return createHash('sha256').update(`${method}\n${scope}\n${params}\n${body === undefined ? '' : JSON.stringify(body)}`).digest('base64url');
}

/** The answer to remember for an operation's outcome: its result, or the error it answered. */
export function answerFor(k: IdempotencyKey, outcome: { result: unknown } | { error: RelayError }): AnswerToRemember {
  if ('error' in outcome) {
    return { scope: k.scope, key: k.key, fingerprint: k.fingerprint, status: outcome.error.status, body: JSON.stringify(toProblem(outcome.error)) };
  }
  return { scope: k.scope, key: k.key, fingerprint: k.fingerprint, status: k.successStatus, body: outcome.result === undefined ? null : JSON.stringify(outcome.result) };
}

/**
 * A keyed item's two possible answers, its success or `refusal`, for a statement that has its
 * effect and remembers the answer at once (it picks one by the outcome). ord: the item's
 * 1-based position in the statement.
 */
export function possibleAnswers(k: IdempotencyKey, ord: number, refusal: RelayError): KeyedItemAnswers {
  const ok = answerFor(k, { result: undefined });
  const err = answerFor(k, { error: refusal });
  return { ord, scope: k.scope, key: k.key, fingerprint: k.fingerprint, ok_status: ok.status, ok_body: ok.body, err_status: err.status, err_body: err.body };
}

/** A statement's error as a KeyTakenError when it says that keys were taken (SQLSTATE RLK01); any other error as it is. */
export function asKeyTaken(err: unknown): unknown {
  const taken = takenKeys(err);
  return taken ? new KeyTakenError(new Set(taken.map(keyId))) : err;
}

export class Idempotency {
  private readonly inFlight = new Set<string>();

  constructor(
    private readonly db: Queryable,
    /** 0 turns the feature off: the header is then ignored. */
    readonly windowSeconds: number,
  ) {}

  get enabled(): boolean {
    return this.windowSeconds > 0;
  }

  /**
   * Before the operation runs: a hold on the key, to release when the request ends. Throws 409
   * while another request with the key runs here. The database is not asked first: the effect's
   * transaction stores the key, and finding it taken rolls the effect back (KeyTakenError); only
   * then is the remembered answer read (to replay, or to refuse with 422). A first request, the
   * common case, so costs no statement of its own, and its key joins a shared statement.
   */
  begin(k: IdempotencyKey): { release(): void } {
    const id = keyId(k);
    if (this.inFlight.has(id)) throw new IdempotencyKeyInUseError('a request with this Idempotency-Key is still being processed; retry it');
    this.inFlight.add(id);
    return { release: () => this.inFlight.delete(id) };
  }

  /** The remembered answer of the key (a 422 if it was for another request), or undefined. */
  async find(k: IdempotencyKey): Promise<RememberedAnswer | undefined> {
    const found = await findAnswer(this.db, k.scope, k.key, this.windowSeconds);
    if (found && found.fingerprint !== k.fingerprint) {
      throw new IdempotencyKeyReusedError('this Idempotency-Key was used with another request; use a new key for a new request');
    }
    return found;
  }

  /** Inside the effect's transaction: stores the answers, or throws KeyTakenError to roll it back. */
  async remember(tx: Queryable, answers: AnswerToRemember[]): Promise<void> {
    if (answers.length === 0) return;
    const taken = await rememberAnswers(tx, answers, this.windowSeconds);
    if (taken.length > 0) throw new KeyTakenError(new Set(taken.map(keyId)));
  }

  /** Deletes expired keys in bounded batches; returns how many. */
  async purge(batch = 1000, maxBatches = 100): Promise<number> {
    if (!this.enabled) return 0;
    return inBatches((n) => purgeExpiredKeys(this.db, this.windowSeconds, n), batch, maxBatches);
  }
}
