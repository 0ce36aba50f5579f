/** What a case throws when the server broke the contract: the message is the case's reason line. */
export class CaseFailure extends Error {
  override name = 'CaseFailure';
}

/** What a case throws when the server does not offer an optional feature it needs. */
export class Skip extends Error {
  override name = 'Skip';
}

export function fail(reason: string): never {
  throw new CaseFailure(reason);
}

export function check(condition: unknown, reason: string | (() => string)): asserts condition {
  if (!condition) fail(typeof reason === 'string' ? reason : reason());
}

/** The answer's status is `expected` (one of them, for an array). */
export function expectStatus(res: { status: number; text: string }, expected: number | number[], what: string): void {
  const ok = Array.isArray(expected) ? expected.includes(res.status) : res.status === expected;
  if (!ok) {
    const want = Array.isArray(expected) ? expected.join(' or ') : String(expected);
    fail(`${what}: ${res.status}, expected ${want}${res.text ? ` (${JSON.stringify(res.text.slice(0, 160))})` : ''}`);
  }
}

/** JSON text with object keys sorted: JSON values compared whatever order their keys came in. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'undefined';
}

export function expectEqual(actual: unknown, expected: unknown, what: string): void {
  const a = canonical(actual);
  const e = canonical(expected);
  if (a !== e) fail(`${what}: ${a.slice(0, 200)}, expected ${e.slice(0, 200)}`);
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls fn until it returns something other than undefined, or fails the case with `what` once
 * timeoutMs has passed: a bounded wait on a condition the server shows, never a fixed sleep.
 */
export async function eventually<T>(fn: () => Promise<T | undefined>, timeoutMs: number, what: string, everyMs = 100): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (performance.now() > deadline) fail(`${what} within ${Math.round(timeoutMs / 100) / 10} s`);
    await sleep(everyMs);
  }
}
