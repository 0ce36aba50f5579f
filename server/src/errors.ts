/**
 * Every error a request can end in, as typed classes, and the one function that maps any
 * thrown value (ours, the OpenAPI validator's, the database driver's) to
 * one of them. The HTTP error handler renders the result as application/problem+json.
 */

export interface FieldError {
  path: string;
  message: string;
}

export abstract class RelayError extends Error {
  abstract readonly status: number;
  abstract readonly slug: string;
  abstract readonly title: string;
  /** Extra headers the response carries (Retry-After). */
  headers(): Record<string, string> {
    return {};
  }
  /** Extra members of the problem body. */
  extensions(): Record<string, unknown> {
    return {};
  }
}

/** The most entries a 400's `errors` list carries; the rest are summed up in its last entry. */
export const MAX_FIELD_ERRORS = 20;

export class BadRequestError extends RelayError {
  readonly status = 400;
  readonly slug = 'bad-request';
  readonly title = 'Bad Request';
  readonly errors: FieldError[];
  constructor(detail: string, errors: FieldError[] = []) {
    super(detail);
    this.errors = errors.length <= MAX_FIELD_ERRORS
      ? errors
      : [...errors.slice(0, MAX_FIELD_ERRORS - 1), { path: '', message: `and ${errors.length - MAX_FIELD_ERRORS + 1} more problems` }];
  }
  override extensions() {
    return { errors: this.errors };
  }
}

/** The client did not send its whole request in time (Node's request and headers timeouts). */
export class RequestTimeoutError extends RelayError {
  readonly status = 408;
  readonly slug = 'request-timeout';
  readonly title = 'Request Timeout';
}

/**
 * No token, or one the server does not know (http/auth.ts). The challenge says which: RFC 6750
 * names a token that was sent but is not valid `invalid_token`.
 */
export class UnauthorizedError extends RelayError {
  readonly status = 401;
  readonly slug = 'unauthorized';
  readonly title = 'Unauthorized';
  constructor(detail: string, readonly tokenSent: boolean) {
    super(detail);
  }
  override headers() {
    return { 'WWW-Authenticate': this.tokenSent ? 'Bearer realm="relay", error="invalid_token"' : 'Bearer realm="relay"' };
  }
}

/** A valid token whose role may not call the operation (http/auth.ts). */
export class ForbiddenError extends RelayError {
  readonly status = 403;
  readonly slug = 'forbidden';
  readonly title = 'Forbidden';
  override headers() {
    return { 'WWW-Authenticate': 'Bearer realm="relay", error="insufficient_scope"' };
  }
}

/** A request naming a Host this server does not answer to (DNS rebinding); see http/origin-guard.ts. */
export class ForbiddenHostError extends RelayError {
  readonly status = 403;
  readonly slug = 'forbidden-host';
  readonly title = 'Forbidden';
}

/** A browser request from an origin not allowed to call this server; see http/origin-guard.ts. */
export class ForbiddenOriginError extends RelayError {
  readonly status = 403;
  readonly slug = 'forbidden-origin';
  readonly title = 'Forbidden';
}

export class RouteNotFoundError extends RelayError {
  readonly status = 404;
  readonly slug = 'not-found';
  readonly title = 'Not Found';
}

export class JobNotFoundError extends RelayError {
  readonly status = 404;
  readonly slug = 'job-not-found';
  readonly title = 'Not Found';
  constructor(queue: string, id: string, inFlight: boolean) {
    super(`job ${JSON.stringify(id)} in queue ${JSON.stringify(queue)} was not found${inFlight ? ' in flight (or its run_id is stale)' : ''}`);
  }
}

/** A replay of a job that has no kept failure. */
export class FailedJobNotFoundError extends RelayError {
  readonly status = 404;
  readonly slug = 'failed-job-not-found';
  readonly title = 'Not Found';
  constructor(queue: string, id: string) {
    super(`job ${JSON.stringify(id)} in queue ${JSON.stringify(queue)} has no kept failure to retry`);
  }
}

export class MethodNotAllowedError extends RelayError {
  readonly status = 405;
  readonly slug = 'method-not-allowed';
  readonly title = 'Method Not Allowed';
}

export class JobExistsError extends RelayError {
  readonly status = 409;
  readonly slug = 'job-exists';
  readonly title = 'Conflict';
  constructor(queue: string, id: string) {
    super(`job ${JSON.stringify(id)} already exists in queue ${JSON.stringify(queue)}`);
  }
}

/** The same Idempotency-Key while the first request with it is still being processed (retry it). */
export class IdempotencyKeyInUseError extends RelayError {
  readonly status = 409;
  readonly slug = 'idempotency-key-in-use';
  readonly title = 'Conflict';
}

/** The same Idempotency-Key with another request: a client bug, never retried. */
export class IdempotencyKeyReusedError extends RelayError {
  readonly status = 422;
  readonly slug = 'idempotency-key-reused';
  readonly title = 'Unprocessable Content';
}

export class PayloadTooLargeError extends RelayError {
  readonly status = 413;
  readonly slug = 'payload-too-large';
  readonly title = 'Payload Too Large';
}

export class UnsupportedMediaTypeError extends RelayError {
  readonly status = 415;
  readonly slug = 'unsupported-media-type';
  readonly title = 'Unsupported Media Type';
}

export class ExpectationFailedError extends RelayError {
  readonly status = 417;
  readonly slug = 'expectation-failed';
  readonly title = 'Expectation Failed';
}

export class HeadersTooLargeError extends RelayError {
  readonly status = 431;
  readonly slug = 'headers-too-large';
  readonly title = 'Request Header Fields Too Large';
}

export class UnprocessableError extends RelayError {
  readonly status = 422;
  readonly slug = 'unprocessable';
  readonly title = 'Unprocessable Content';
}

/** A 429: the same request can succeed later, after Retry-After. */
abstract class RetryLaterError extends RelayError {
  readonly status = 429;
  readonly title = 'Too Many Requests';
  constructor(detail: string, readonly retryAfterSeconds = 1) {
    super(detail);
  }
  override headers() {
    return { 'Retry-After': String(this.retryAfterSeconds) };
  }
}

export class StorageUnavailableError extends RetryLaterError {
  readonly slug = 'storage-unavailable';
}

/** Over a server-wide cap (connections, waiting long polls). */
export class OverloadedError extends RetryLaterError {
  readonly slug = 'overloaded';
}

export class InternalError extends RelayError {
  readonly status = 500;
  readonly slug = 'internal';
  readonly title = 'Internal Server Error';
}

export class ServiceUnavailableError extends RelayError {
  readonly status = 503;
  readonly slug = 'unavailable';
  readonly title = 'Service Unavailable';
}

// SQLSTATEs after which the same request can succeed later: too many connections, lock not
// available, statement timeout / cancel, serialization failure, deadlock, shutdown and
// start-up of the server (a database restart), out of resources.
const RETRYABLE_SQLSTATES = new Set(['53000', '53100', '53200', '53300', '55P03', '57014', '40001', '40P01', '57P01', '57P02', '57P03', '58000', '58030']);
const RETRYABLE_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED']);
// node-postgres reports pool and socket trouble with plain Errors; these are their messages.
const RETRYABLE_MESSAGES = [
  /timeout exceeded when trying to connect/i,
  /connection terminated/i,
  /query read timeout/i,
  /not queryable/i,
  /connection (?:is )?closed/i,
  /terminating connection/i,
];

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

/** Maps a database driver error to a RelayError, or undefined when it is not one. */
function fromDatabaseError(err: Record<string, unknown>): RelayError | undefined {
  const code = typeof err.code === 'string' ? err.code : undefined;
  const message = typeof err.message === 'string' ? err.message : '';
  if (code && /^[0-9A-Z]{5}$/.test(code)) {
    if (RETRYABLE_SQLSTATES.has(code) || code.startsWith('08')) {
      return new StorageUnavailableError('the database is busy or unavailable; retry later');
    }
    if (code === '23505') return new UnprocessableError('a value conflicts with one already stored');
    // Data exceptions (22: bad encoding, NUL bytes, out-of-range values), integrity
    // violations (23) and program limits (54: a key too large to index) never succeed on retry.
    // The detail says which kind in the caller's terms: the database's own message names
    // tables, indexes and internals.
    if (code.startsWith('54')) return new UnprocessableError('a value is too large for the database to store or index (queue and id together, or a JSON value too deeply nested)');
    if (code.startsWith('22')) return new UnprocessableError('the database refused a value in the request as invalid or out of range (text, number, time or JSON)');
    if (code.startsWith('23')) return new UnprocessableError('a value in the request breaks a rule of the stored data');
    return undefined;
  }
  if (code && RETRYABLE_NODE_CODES.has(code)) return new StorageUnavailableError('the database cannot be reached; retry later');
  if (RETRYABLE_MESSAGES.some((re) => re.test(message))) return new StorageUnavailableError('the database cannot be reached; retry later');
  return undefined;
}

/** Errors thrown by express-openapi-validator carry status and a list of errors. */
function fromValidatorError(err: Record<string, unknown>): RelayError | undefined {
  if (typeof err.status !== 'number' || !Array.isArray(err.errors)) return undefined;
  const items = err.errors as Array<{ path?: string; message?: string; errorCode?: string }>;
  const errors = items.map((e) => ({ path: String(e.path ?? ''), message: String(e.message ?? 'invalid') }));
  switch (err.status) {
    case 400:
      return new BadRequestError('the request does not match the API', errors);
    case 415:
      return new UnsupportedMediaTypeError('the request body must be application/json');
    case 404:
      return new RouteNotFoundError('no such path in the relay API');
    case 405:
      return new MethodNotAllowedError('this path does not accept that method');
    case 413:
      return new PayloadTooLargeError('the request body is over the limit');
    default:
      return undefined;
  }
}

/** The single mapping from anything thrown to the error the client sees. */
export function toRelayError(err: unknown): RelayError {
  if (err instanceof RelayError) return err;
  if (isRecord(err)) {
    const mapped = fromValidatorError(err) ?? fromDatabaseError(err);
    if (mapped) return mapped;
  }
  return new InternalError('an unexpected error occurred');
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  [extension: string]: unknown;
}

/**
 * Makes an error that is only ever rendered (a problem body to remember), never thrown: without
 * the stack trace every Error captures, which would cost more than the rest of its work when
 * one is made for each request of a shared statement.
 */
export function withoutStack<E extends Error>(make: () => E): E {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return make();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

export function toProblem(err: RelayError): Problem {
  return {
    type: `urn:relay-ts:problem:${err.slug}`,
    title: err.title,
    status: err.status,
    detail: err.message,
    ...err.extensions(),
  };
}
