import { expect } from 'chai';
import { call } from './relay.js';

/** Things an error response must never show a client: table names, SQL, source locations. */
const LEAKS = [
  /relay_\w+/i,
  /\b(select|insert|update|delete|alter)\b.*\b(from|into|set|table)\b/i,
  /\bat .+:\d+:\d+/,
  /\.(ts|js):\d+/,
  /\brelation\b/i,
  /\bsyntax\b/i,
  /node_modules/,
];

/** The response is problem+json (RFC 9457) whose text names no table, no SQL and no source location. */
export function expectNoLeak(res: { status: number; headers: Headers; body: any; text: string }, what: string): void {
  expect(res.headers.get('content-type'), what).to.match(/^application\/problem\+json/);
  expect(res.body, what).to.include({ status: res.status });
  for (const member of ['type', 'title', 'detail']) expect(res.body[member], `${what}: ${member}`).to.be.a('string');
  for (const leak of LEAKS) expect(res.text, `${what} leaks ${leak}`).not.to.match(leak);
}

/** A 429 is problem+json with a Retry-After header of whole seconds. */
export function expectRetryable(res: { status: number; headers: Headers; body: any; text: string }, what: string): void {
  expect(res.status, `${what}: ${res.text}`).to.equal(429);
  expect(res.headers.get('retry-after'), what).to.match(/^\d+$/);
  expectNoLeak(res, what);
}

/** Sends each request to baseUrl: every one must answer a 500 that leaks nothing. */
export async function expectInternalErrorsWithoutLeak(baseUrl: string, requests: Array<[string, string, Parameters<typeof call>[2]]>): Promise<void> {
  for (const [method, path, options] of requests) {
    const res = await call(method, path, { ...options, baseUrl });
    const what = `${method} ${path}: ${res.status} ${res.text}`;
    expect(res.status, what).to.equal(500);
    expectNoLeak(res, what);
  }
}
