/**
 * Sending one call of the API, the one path every RelayClient method takes: each attempt under
 * a timeout and the caller's AbortSignal, failures mapped by toRelayError, and RetryableErrors
 * tried again with exponential backoff and full jitter, or after the server's Retry-After,
 * within a number of attempts and a total time. With several servers (Endpoints), an attempt
 * that a server could not serve moves to the next one at once when the request is safe to send
 * again there.
 */
import type { Endpoints } from './endpoints.js';
import { RetryableError, toRelayError, type Failure, type RelayError } from './errors.js';

export interface RetryOptions {
  /** Attempts in all, the first included. Default 5; 1 means no retry. */
  maxAttempts?: number;
  /** The backoff before the first retry is drawn from 0..initialDelayMs; it doubles each retry. Default 200. */
  initialDelayMs?: number;
  /** The backoff never exceeds this, Retry-After aside. Default 10 000. */
  maxDelayMs?: number;
  /** No retry starts later than this many ms after the call began. Default 60 000. */
  maxElapsedMs?: number;
  /** Called before each retry, e.g. to log it. A call's `onRetry` is called after the client's. */
  onRetry?: (event: RetryEvent) => void;
}

export interface RetryEvent {
  /** The attempt that failed (1 for the first). */
  attempt: number;
  /** How long the client waits before the next attempt (0 when it moves to another server at once). */
  delayMs: number;
  error: RetryableError;
  /**
   * The failed attempt may have been carried out by the server: its answer never came (a reset
   * connection, a timeout) or a gateway answered 502 or 504.
   */
  uncertain: boolean;
  /** The base URL the next attempt goes to (another server's after a fail-over). */
  nextUrl: string;
}

/** Options every method takes as its last argument. */
export interface RequestOptions {
  /** Aborting rejects the call with the signal's reason at once; an aborted call is not retried. */
  signal?: AbortSignal;
  /** Per attempt; a timeout is a RetryableError. 0 disables it. Default: the client's (30 000). */
  timeoutMs?: number;
  /** Merged over the client's retry options; `false` sends one attempt only. */
  retry?: RetryOptions | false;
}

/** Options of the calls that change something: they are sent with an Idempotency-Key. */
export interface WriteOptions extends RequestOptions {
  /**
   * The call's Idempotency-Key (1–255 printable ASCII characters). Default: a new random key
   * per call, sent on every attempt of that call, so that a retry after a lost answer has no
   * second effect. Give your own to make a resend safe across process restarts (e.g. a key
   * derived from an outbox row).
   */
  idempotencyKey?: string;
}

export const defaultRetryOptions: Readonly<Required<Omit<RetryOptions, 'onRetry'>>> = Object.freeze({
  maxAttempts: 5,
  initialDelayMs: 200,
  maxDelayMs: 10_000,
  maxElapsedMs: 60_000,
});

export const defaultTimeoutMs = 30_000;

type ResolvedRetry = Required<Omit<RetryOptions, 'onRetry'>> & Pick<RetryOptions, 'onRetry'>;

/**
 * The client's retry options with a call's over them; `false` on either side is one attempt.
 * Both `onRetry`s are called, the client's first: a call that watches its own retries (the
 * worker's completions) does not silence the client's logging.
 */
export function resolveRetry(client: RetryOptions | false | undefined, call: RetryOptions | false | undefined): ResolvedRetry {
  if (client === false || call === false) return { ...defaultRetryOptions, maxAttempts: 1 };
  const resolved = { ...defaultRetryOptions, ...definedOnly(client), ...definedOnly(call) };
  const [first, second] = [client?.onRetry, call?.onRetry];
  if (first && second) {
    resolved.onRetry = (event) => {
      first(event);
      second(event);
    };
  }
  return resolved;
}

function definedOnly(options: RetryOptions | undefined): RetryOptions {
  return Object.fromEntries(Object.entries(options ?? {}).filter(([, v]) => v !== undefined));
}

/**
 * Full jitter: a random delay between 0 and min(maxDelayMs, initialDelayMs * 2^(retry-1)).
 * Clients that failed together spread over the whole range, so they do not return in step.
 */
export function fullJitterBackoff(retry: number, options: Pick<ResolvedRetry, 'initialDelayMs' | 'maxDelayMs'>): number {
  const ceiling = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** (retry - 1));
  return Math.round(Math.random() * ceiling);
}

/** Retry-After as delay-seconds or an HTTP date, in ms; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortReason(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** What openapi-fetch resolves to: `data` on a 2xx, `error` (the parsed body) otherwise. */
export interface FetchResult<D> {
  data?: D;
  error?: unknown;
  response: Response;
}

export interface SendOptions {
  method: string;
  path: string;
  /** The servers to send to; each attempt goes to the one `pick()` names. */
  endpoints: Endpoints;
  /**
   * Whether the request may be sent again to another server after an attempt that may have
   * been carried out (a read, or a write with an Idempotency-Key): else only a failure that
   * certainly changed nothing moves it.
   */
  resendable: boolean;
  timeoutMs: number;
  signal: AbortSignal | undefined;
  retry: ResolvedRetry;
}

/** The URL of a request, without the query (as openapi-fetch joins it), for the error messages. */
function requestUrl(baseUrl: string, path: string): string {
  return `${baseUrl.replace(/\/$/, '')}${path}`;
}

/** One attempt; resolves to the response or to how it failed. Rejects only when the caller aborts. */
async function attempt<D>(
  run: (signal: AbortSignal) => Promise<FetchResult<D>>,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<{ ok: true; data: D | undefined } | { ok: false; failure: Failure }> {
  const controller = new AbortController();
  let timedOut = false;
  const timer = timeoutMs > 0 && Number.isFinite(timeoutMs)
    ? setTimeout(() => {
        timedOut = true;
        controller.abort(new DOMException(`timed out after ${timeoutMs} ms`, 'TimeoutError'));
      }, timeoutMs)
    : undefined;
  const onAbort = () => controller.abort(abortReason(signal!));
  signal?.addEventListener('abort', onAbort, { once: true });
  // Settles as soon as the attempt is aborted, even with a fetch that ignores the signal.
  let onControllerAbort: () => void = () => undefined;
  const aborted = new Promise<never>((_, reject) => {
    onControllerAbort = () => reject(controller.signal.reason);
    controller.signal.addEventListener('abort', onControllerAbort, { once: true });
  });
  const pending = run(controller.signal);
  pending.catch(() => undefined);
  aborted.catch(() => undefined);
  try {
    const { data, error, response } = await Promise.race([pending, aborted]);
    if (response.ok) return { ok: true, data };
    return {
      ok: false,
      failure: { type: 'response', status: response.status, body: error, retryAfterMs: parseRetryAfter(response.headers.get('Retry-After')) },
    };
  } catch (cause) {
    if (signal?.aborted) throw abortReason(signal);
    return { ok: false, failure: timedOut ? { type: 'timeout', timeoutMs } : { type: 'network', cause } };
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    // Not controller.abort(): that builds an exception and runs fetch's abort path on every call.
    controller.signal.removeEventListener('abort', onControllerAbort);
  }
}

/**
 * Whether the server may have carried out an attempt that failed: no answer came (except a
 * refused connection), or a gateway answered 502 or 504 after perhaps passing it on.
 */
function uncertain(failure: Failure): boolean {
  if (failure.type === 'timeout') return true;
  if (failure.type === 'response') return failure.status === 502 || failure.status === 504;
  // fetch wraps the socket's error in a TypeError (cause.cause.code); node:http gives it as is.
  const cause = failure.cause as { code?: unknown; cause?: { code?: unknown } } | undefined;
  const code = cause?.cause?.code ?? cause?.code;
  return code !== 'ECONNREFUSED';
}

/**
 * Whether the server could not serve the attempt, so that another server should take the
 * requests meanwhile: no answer, or an answer that says it cannot (429: its database or its
 * limits; 502, 503, 504: it or the gateway in front of it).
 */
function unavailable(failure: Failure): boolean {
  if (failure.type !== 'response') return true;
  return failure.status === 429 || failure.status === 502 || failure.status === 503 || failure.status === 504;
}

/**
 * Sends a call, retrying as `options.retry` allows; resolves to the 2xx data or throws a RelayError.
 * A retry that moves to another server at once (one not backing off) does not wait and does
 * not use up an attempt of `maxAttempts`, which bounds the waits; `maxElapsedMs` bounds both.
 */
export async function send<D>(run: (signal: AbortSignal, baseUrl: string) => Promise<FetchResult<D>>, options: SendOptions): Promise<D | undefined> {
  const { method, path, endpoints, resendable, timeoutMs, signal, retry } = options;
  const started = Date.now();
  let afterUncertainAttempt = false;
  let uncertainAttemptError: RelayError | undefined;
  /** Set after an uncertain attempt of a request that is not resendable: it stays on that server. */
  let pinned: string | undefined;
  /** Attempts counted against maxAttempts: the first, and each after a wait. */
  let counted = 1;
  /** Where the retry announced to onRetry goes. */
  let chosen: string | undefined;
  for (let attempts = 1; ; attempts++) {
    if (signal?.aborted) throw abortReason(signal);
    const baseUrl = chosen ?? endpoints.pick();
    const result = await attempt((s) => run(s, baseUrl), timeoutMs, signal);
    if (result.ok) {
      endpoints.answered(baseUrl);
      return result.data;
    }
    const { failure } = result;
    const url = requestUrl(baseUrl, path);
    const error: RelayError = toRelayError(failure, { method, path, url, attempts, afterUncertainAttempt, uncertainAttemptError });
    const wasUncertain = uncertain(failure);
    if (wasUncertain) {
      afterUncertainAttempt = true;
      uncertainAttemptError ??= error;
      if (!resendable) pinned = baseUrl;
    }
    if (unavailable(failure)) endpoints.failed(baseUrl, failure.type === 'response' ? failure.retryAfterMs : undefined);
    else endpoints.answered(baseUrl);
    if (!(error instanceof RetryableError) || retry.maxAttempts <= 1) throw error;
    const nextUrl = (chosen = pinned ?? endpoints.pick());
    const elapsed = Date.now() - started;
    if (nextUrl !== baseUrl && !endpoints.backingOff(nextUrl)) {
      // Another server can take it now: no reason to wait.
      if (elapsed > retry.maxElapsedMs) throw error;
      retry.onRetry?.({ attempt: attempts, delayMs: 0, error, uncertain: wasUncertain, nextUrl });
      continue;
    }
    if (counted >= retry.maxAttempts) throw error;
    // Retry-After is honoured, with a little jitter so that clients do not return in step.
    const delayMs = error.retryAfterMs !== undefined
      ? error.retryAfterMs + Math.round(Math.random() * retry.initialDelayMs)
      : fullJitterBackoff(counted, retry);
    if (elapsed + delayMs > retry.maxElapsedMs) throw error;
    retry.onRetry?.({ attempt: attempts, delayMs, error, uncertain: wasUncertain, nextUrl });
    counted++;
    await sleep(delayMs, signal);
  }
}
