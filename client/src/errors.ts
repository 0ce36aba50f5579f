/**
 * The errors the client throws, and the one function (`toRelayError`) that maps every failed
 * request (an error status, a network failure, a timeout) to one of them.
 *
 * `instanceof` works across copies of this package (two versions in one node_modules, or a
 * bundle next to an installed copy): each instance carries a list of the kinds it is under a
 * `Symbol.for` key, and every class checks that list in `Symbol.hasInstance`.
 */
import type { Problem } from './types.js';

const KIND = Symbol.for('@relay-ts/client:error-kind');
const KINDS = Symbol.for('@relay-ts/client:error-kinds');

/** How a failed attempt ended: with a response, without one, or out of time. */
export type Failure =
  | { type: 'response'; status: number; body: unknown; retryAfterMs: number | undefined }
  | { type: 'network'; cause: unknown }
  | { type: 'timeout'; timeoutMs: number };

/** What the request was and how many attempts it took, for the error's message and fields. */
export interface RequestContext {
  method: string;
  path: string;
  /** The URL requested (the base URL and the path), without the query. */
  url?: string;
  /** Attempts made, this one included. */
  attempts: number;
  /** An earlier attempt of the same call ended without an answer (see `afterUncertainAttempt`). */
  afterUncertainAttempt: boolean;
  /** The failure of the first such attempt. */
  uncertainAttemptError?: RelayError;
}

export interface RelayErrorInit extends RequestContext {
  status: number | undefined;
  problem: Problem | undefined;
  cause?: unknown;
}

/** Any error of a relay request. Subclasses name the statuses a caller handles differently. */
export class RelayError extends Error {
  static readonly [KIND]: string = 'RelayError';

  /** True for instances of this class, also when they come from another copy of the package. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    if (typeof value !== 'object' || value === null || !Object.hasOwn(this, KIND)) return false;
    const kinds: unknown = (value as Record<symbol, unknown>)[KINDS];
    return Array.isArray(kinds) && kinds.includes((this as unknown as Record<symbol, unknown>)[KIND]);
  }

  /** The HTTP status; undefined when no response came (network failure, timeout). */
  readonly status: number | undefined;
  /** The RFC 9457 problem body of the response, when it had one. */
  readonly problem: Problem | undefined;
  readonly method: string;
  /** The path of the request in the API (`/v1/complete`), without the query. */
  readonly path: string;
  /** The URL requested: the client's base URL followed by `path`, without the query. */
  readonly url: string | undefined;
  /** How many attempts the call made before giving up, this one included. */
  readonly attempts: number;
  /**
   * True when an earlier attempt of the same call ended without an answer (network failure,
   * timeout, 502, 504), so the server may have carried it out. A 409 from `enqueue` or a 404
   * from `complete`, `fail` or `reschedule` may then be the result of this call's own first
   * attempt.
   */
  readonly afterUncertainAttempt: boolean;
  /**
   * With `afterUncertainAttempt`: how the first attempt that may have gone through failed (a
   * reset connection, a timeout, a 502 or 504), which is what makes the outcome uncertain; the
   * error itself is the last attempt's.
   */
  readonly uncertainAttemptError: RelayError | undefined;

  constructor(message: string, init: RelayErrorInit) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.status = init.status;
    this.problem = init.problem;
    this.method = init.method;
    this.path = init.path;
    this.url = init.url;
    this.attempts = init.attempts;
    this.afterUncertainAttempt = init.afterUncertainAttempt;
    this.uncertainAttemptError = init.uncertainAttemptError;
    const kinds: string[] = [];
    for (let c: unknown = new.target; typeof c === 'function' && c !== Error; c = Object.getPrototypeOf(c)) {
      if (Object.hasOwn(c, KIND)) kinds.push((c as unknown as Record<symbol, string>)[KIND]!);
    }
    Object.defineProperty(this, KINDS, { value: Object.freeze(kinds), enumerable: false });
    // The kind, not new.target.name, which a minifier may rename.
    this.name = kinds[0] ?? 'RelayError';
  }
}

/** 400: the request does not match the API; `problem.errors` lists what was wrong. */
export class ValidationError extends RelayError {
  static override readonly [KIND]: string = 'ValidationError';
}

/**
 * 404 with the server's `job-not-found` problem: no such job, or (heartbeat, reschedule, fail,
 * and with a run id) not in flight.
 */
export class JobNotFoundError extends RelayError {
  static override readonly [KIND]: string = 'JobNotFoundError';
}

/**
 * 404 for a route the server does not have: the base URL's host or path prefix is wrong (a
 * server answering its own 404, or a proxy's 404 without relay's problem body). The message
 * names the URL requested.
 */
export class RouteNotFoundError extends RelayError {
  static override readonly [KIND]: string = 'RouteNotFoundError';
}

/**
 * 401: the server has tokens and this call sent none, or one it does not know (check the
 * client's `token`). Never retried: the same token would be refused again.
 */
export class UnauthorizedError extends RelayError {
  static override readonly [KIND]: string = 'UnauthorizedError';
}

/**
 * 403 with the server's `forbidden` problem: the token is valid but its role may not call this
 * operation (a producer's token on a worker's call). Never retried.
 */
export class ForbiddenError extends RelayError {
  static override readonly [KIND]: string = 'ForbiddenError';
}

/** 409: a job with this (queue, id) is already waiting or in flight. */
export class JobExistsError extends RelayError {
  static override readonly [KIND]: string = 'JobExistsError';
}

/** 413: the request body is over the server's limit. */
export class PayloadTooLargeError extends RelayError {
  static override readonly [KIND]: string = 'PayloadTooLargeError';
}

/** 422: the database refused a value for good (for example a NUL character in a string). */
export class PermanentError extends RelayError {
  static override readonly [KIND]: string = 'PermanentError';
}

export interface RetryableErrorInit extends RelayErrorInit {
  reason: 'status' | 'network' | 'timeout';
  retryAfterMs: number | undefined;
}

/**
 * The same request may succeed later: 429, 502, 503, 504, a network failure or a timeout.
 * The client has already retried it as its retry options allow when this is thrown.
 */
export class RetryableError extends RelayError {
  static override readonly [KIND]: string = 'RetryableError';
  /** `status`: the server answered 429, 502, 503 or 504; else no answer came. */
  readonly reason: 'status' | 'network' | 'timeout';
  /** The delay the server asked for with `Retry-After`, in milliseconds. */
  readonly retryAfterMs: number | undefined;

  constructor(message: string, init: RetryableErrorInit) {
    super(message, init);
    this.reason = init.reason;
    this.retryAfterMs = init.retryAfterMs;
  }
}

const RETRYABLE_STATUSES = new Set([429, 502, 503, 504]);

/** The problem `type` the relay server gives a missing job; any other 404 is a missing route. */
export const JOB_NOT_FOUND_TYPE = 'urn:relay-ts:problem:job-not-found';
/** A replay of a job with no kept failure: a JobNotFoundError too. */
export const FAILED_JOB_NOT_FOUND_TYPE = 'urn:relay-ts:problem:failed-job-not-found';
const KEY_IN_USE_TYPE = 'urn:relay-ts:problem:idempotency-key-in-use';
const FORBIDDEN_TYPE = 'urn:relay-ts:problem:forbidden';

function asProblem(body: unknown): Problem | undefined {
  return typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Problem) : undefined;
}

function describe(body: unknown, problem: Problem | undefined): string {
  if (problem && typeof problem.detail === 'string') return problem.detail;
  if (problem && typeof problem.title === 'string') return problem.title;
  return typeof body === 'string' && body.trim() ? body.trim().slice(0, 200) : 'no details';
}

/** The single mapping from a failed attempt to the error the caller sees. */
export function toRelayError(failure: Failure, context: RequestContext): RelayError {
  const where = `${context.method} ${context.path}`;
  if (failure.type === 'network') {
    // Node's fetch says "fetch failed" and puts what happened ("connect ECONNREFUSED …") in its cause.
    const inner = (failure.cause as { cause?: { message?: unknown } } | undefined)?.cause?.message;
    const outer = failure.cause instanceof Error ? failure.cause.message : String(failure.cause);
    const reason = typeof inner === 'string' && inner ? `${outer} (${inner})` : outer;
    return new RetryableError(`${where} failed: ${reason}`, {
      ...context, status: undefined, problem: undefined, cause: failure.cause, reason: 'network', retryAfterMs: undefined,
    });
  }
  if (failure.type === 'timeout') {
    return new RetryableError(`${where} timed out after ${failure.timeoutMs} ms`, {
      ...context, status: undefined, problem: undefined, reason: 'timeout', retryAfterMs: undefined,
    });
  }
  const { status, body } = failure;
  const problem = asProblem(body);
  const message = `${where} answered ${status}: ${describe(body, problem)}`;
  const init: RelayErrorInit = { ...context, status, problem };
  if (RETRYABLE_STATUSES.has(status)) {
    return new RetryableError(message, { ...init, reason: 'status', retryAfterMs: failure.retryAfterMs });
  }
  switch (status) {
    case 400:
      return new ValidationError(message, init);
    case 401:
      return new UnauthorizedError(message, init);
    case 403:
      // A 403 for a Host or Origin (forbidden-host, forbidden-origin) is no matter of tokens.
      if (problem?.type === FORBIDDEN_TYPE) return new ForbiddenError(message, init);
      return new RelayError(message, init);
    case 404:
      if (problem?.type === JOB_NOT_FOUND_TYPE || problem?.type === FAILED_JOB_NOT_FOUND_TYPE) return new JobNotFoundError(message, init);
      return new RouteNotFoundError(
        `${context.method} ${context.url ?? context.path} answered 404: the server has no such route (check the host and path of baseUrl): ${describe(body, problem)}`,
        init,
      );
    case 409:
      // The same Idempotency-Key while the first request is still being processed: retry it.
      if (problem?.type === KEY_IN_USE_TYPE) return new RetryableError(message, { ...init, reason: 'status', retryAfterMs: failure.retryAfterMs });
      return new JobExistsError(message, init);
    case 413:
      return new PayloadTooLargeError(message, init);
    case 422:
      return new PermanentError(message, init);
    default:
      return new RelayError(message, init);
  }
}
