import { RelayClient, RelayError, RetryableError } from '@relay-ts/client';

/**
 * The token lives in sessionStorage: it survives a reload but not the tab, and other sites
 * cannot read it.
 */
const TOKEN_KEY = 'relay-ui-token';

export function savedToken(): string | undefined {
  return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
}

export function saveToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/**
 * The page's client. No retries: a refresh comes again in a few seconds anyway, and the page
 * must say at once that the server is unreachable rather than retry for a minute. Idempotency
 * keys need crypto.randomUUID, which browsers give only to secure contexts (https, localhost).
 */
export function clientFor(token: string | undefined): RelayClient {
  return new RelayClient({
    baseUrl: location.origin,
    token,
    retry: false,
    timeoutMs: 10_000,
    idempotencyKeys: typeof globalThis.crypto?.randomUUID === 'function',
  });
}

/** No answer came (network failure, timeout) or a proxy in front says the server is gone. */
export function isUnreachable(err: unknown): boolean {
  return err instanceof RetryableError && (err.status === undefined || err.status === 502 || err.status === 504);
}

/** One line for a toast: the server's problem detail when there is one. */
export function describeError(err: unknown): string {
  if (err instanceof RelayError) {
    const detail = err.problem?.detail;
    return err.status === undefined ? 'the server did not answer' : `${err.status}: ${detail ?? err.message}`;
  }
  return err instanceof Error ? err.message : String(err);
}
