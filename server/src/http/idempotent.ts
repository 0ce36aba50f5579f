import type { Request, Response } from 'express';
import { fingerprint, KeyTakenError, type Idempotency, type IdempotencyKey } from '../idempotency.js';
import type { RememberedAnswer } from '../sql/idempotency.js';

export const IDEMPOTENCY_HEADER = 'idempotency-key';

/** Writes a remembered answer again, marked as a replay. */
function replay(res: Response, answer: RememberedAnswer): void {
  res.status(answer.status).set('Idempotent-Replayed', 'true');
  if (answer.body === null) return void res.end();
  res.type(answer.status >= 400 ? 'application/problem+json' : 'application/json').send(answer.body);
}

/**
 * Runs a write operation's handler under its request's Idempotency-Key, when it carries one.
 * The handler's effect stores the key with its answer; when the key was taken already (an
 * earlier request, or another server's meanwhile), the effect rolls back and the remembered
 * answer is replayed (or refused with 422 when it answered another request). `scope` names the operation,
 * so that its aliases share keys; `successStatus` is the status of its success. With tokens,
 * keys are also scoped to the caller's token (http/auth.ts sets res.locals.principal).
 */
export async function idempotent(
  idempotency: Idempotency,
  scope: string,
  successStatus: number,
  req: Request<unknown, unknown, unknown, unknown>,
  res: Response,
  handler: (key: IdempotencyKey | undefined) => Promise<void>,
): Promise<void> {
  const header = req.headers[IDEMPOTENCY_HEADER];
  if (!idempotency.enabled || typeof header !== 'string') return handler(undefined);
  const principal = res.locals.principal as string | undefined;
  const key: IdempotencyKey = {
    scope: principal === undefined ? scope : `${scope} by ${principal}`,
    key: header,
    fingerprint: fingerprint(req.method, scope, req.query as Record<string, unknown>, req.body),
    successStatus,
  };
  const hold = idempotency.begin(key);
  try {
    await handler(key);
  } catch (err) {
    if (!(err instanceof KeyTakenError)) throw err;
    const answer = await idempotency.find(key);
    if (!answer) throw err;
    replay(res, answer);
  } finally {
    hold.release();
  }
}
