import { expect } from 'chai';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  JobExistsError, JobNotFoundError, PayloadTooLargeError, PermanentError, RelayClient, RelayError, RetryableError, RouteNotFoundError,
  ValidationError,
} from '../../client/src/index.js';
import { TestProxy } from '../helpers/proxy.js';
import { relay, startRelay, uniqueQueue } from '../helpers/relay.js';
import { closedPort } from '../helpers/net.js';
import { rejection as rejectionOf } from '../helpers/rejection.js';

type ErrorClass = abstract new (...args: never[]) => RelayError;
const subclasses: Record<string, ErrorClass> = {
  ValidationError, JobNotFoundError, RouteNotFoundError, JobExistsError, PayloadTooLargeError, PermanentError, RetryableError,
};

const rejection = (promise: Promise<unknown>) => rejectionOf<RelayError>(promise);

/** Checks an error is exactly of `expected` in the hierarchy: its class, RelayError and Error, no sibling. */
function expectKind(err: unknown, expected: ErrorClass, status: number | undefined) {
  expect(err).to.be.instanceOf(expected);
  expect(err).to.be.instanceOf(RelayError);
  expect(err).to.be.instanceOf(Error);
  for (const [name, cls] of Object.entries(subclasses)) {
    if (cls !== expected) expect(err, `not a ${name}`).not.to.be.instanceOf(cls);
  }
  const e = err as RelayError;
  expect(e.name).to.equal(expected.name);
  expect(e.status).to.equal(status);
  expect(e.message).to.be.a('string').and.not.empty;
  expect(String(e)).to.match(new RegExp(`^${expected.name}: `));
}


describe('RelayClient errors: one class per status', () => {
  let proxy: TestProxy;
  before(async () => {
    proxy = await TestProxy.start(relay().url);
  });
  after(() => proxy.close());
  const c = () => new RelayClient<unknown, unknown>({ baseUrl: relay().url });
  const viaProxy = () => new RelayClient({ baseUrl: proxy.url, retry: false });

  it('400 is a ValidationError carrying the problem and its list of errors', async () => {
    const err = await rejection(c().enqueue({ id: '', queue: uniqueQueue(), timeout: 5 }));
    expectKind(err, ValidationError, 400);
    expect(err.problem).to.include({ status: 400 });
    expect(err.problem?.title).to.be.a('string').and.not.empty;
    expect(err.problem?.errors?.map((e) => e.path)).to.include('/body/id');
    expect(err).to.include({ method: 'POST', path: '/enqueue', attempts: 1 });
  });

  it('404 is a JobNotFoundError with the server detail in the message', async () => {
    const queue = uniqueQueue();
    const err = await rejection(c().complete(queue, 'ghost'));
    expectKind(err, JobNotFoundError, 404);
    expect(err.problem?.detail).to.include(queue);
    expect(err.message).to.include(err.problem!.detail).and.include('DELETE /v1/complete');
  });

  it('409 is a JobExistsError', async () => {
    const queue = uniqueQueue();
    await c().enqueue({ id: 'a', queue, timeout: 5 });
    expectKind(await rejection(c().enqueue({ id: 'a', queue, timeout: 5 })), JobExistsError, 409);
  });

  it('413 is a PayloadTooLargeError', async () => {
    const small = await startRelay({ maxBody: 1024 });
    try {
      const client = new RelayClient({ baseUrl: small.url });
      const queue = uniqueQueue();
      expectKind(await rejection(client.enqueue({ id: 'big', queue, timeout: 5, payload: 'x'.repeat(2048) })), PayloadTooLargeError, 413);
      expect(await client.next(queue)).to.deep.equal([]);
    } finally {
      await small.close();
    }
  });

  it('422 is a PermanentError', async () => {
    // The server refuses before the database what it can; a 422 now comes from the database
    // itself (a constraint, a trigger), scripted here.
    const problem = { type: 'urn:relay-ts:problem:unprocessable', title: 'Unprocessable Content', status: 422, detail: 'refused' };
    proxy.script({ status: 422, body: problem });
    expectKind(await rejection(viaProxy().enqueue({ id: 'a', queue: uniqueQueue(), timeout: 5 })), PermanentError, 422);
  });

  for (const status of [429, 502, 503, 504]) {
    it(`${status} is a RetryableError with reason "status"`, async () => {
      const problem = { type: 'urn:test', title: 'busy', status, detail: 'try later' };
      proxy.script({ status, headers: { 'Retry-After': '7' }, body: problem });
      const err = await rejection(viaProxy().next(uniqueQueue()));
      expectKind(err, RetryableError, status);
      const retryable = err as RetryableError;
      expect(retryable.reason).to.equal('status');
      expect(retryable.retryAfterMs).to.equal(7000);
      expect(retryable.problem).to.deep.equal(problem);
    });
  }

  it('Retry-After as an HTTP date becomes a delay in ms', async () => {
    const at = new Date(Date.now() + 30_000);
    proxy.script({ status: 429, headers: { 'Retry-After': at.toUTCString() } });
    const err = (await rejection(viaProxy().health())) as RetryableError;
    expect(err.retryAfterMs).to.be.within(25_000, 30_000);
  });

  it('503 from health (the server cannot reach its database) is a RetryableError', async () => {
    proxy.script({ status: 503, body: { type: 'urn:x', title: 'Service Unavailable', status: 503, detail: 'the database did not answer' } });
    expectKind(await rejection(viaProxy().health()), RetryableError, 503);
  });

  it('any other status (500) is a plain RelayError, and is not retried', async () => {
    const before = proxy.requests.length;
    proxy.script({ status: 500, body: { type: 'about:blank', title: 'Internal Server Error', status: 500, detail: 'boom' } });
    const client = new RelayClient({ baseUrl: proxy.url, retry: { initialDelayMs: 1 } });
    const err = await rejection(client.health());
    expectKind(err, RelayError, 500);
    expect(err.message).to.include('boom');
    expect(proxy.requests.length - before).to.equal(1);
  });

  it('a 404 for a route the server does not have is a RouteNotFoundError naming the URL, not a missing job', async () => {
    // A base URL with a path prefix the server does not serve: every route is missing.
    const base = `${relay().url}/api`;
    const client = new RelayClient({ baseUrl: base, retry: { initialDelayMs: 1 } });
    const queue = uniqueQueue();
    await c().enqueue({ id: 'a', queue, timeout: 30 });
    for (const [call, method, path] of [
      [() => client.complete(queue, 'a'), 'DELETE', '/v1/complete'],
      [() => client.heartbeat(queue, 'a'), 'PATCH', '/v1/heartbeat'],
      [() => client.health(), 'GET', '/health'],
    ] as const) {
      const err = await rejection(call());
      expectKind(err, RouteNotFoundError, 404);
      expect(err.problem?.type).to.equal('urn:relay-ts:problem:not-found');
      expect(err).to.include({ method, path, url: `${base}${path}`, attempts: 1 });
      expect(err.message).to.include(`${method} ${base}${path}`);
    }
    // The job the wrong URL could not reach is untouched.
    expect((await c().next(queue)).map((j) => j.id)).to.deep.equal(['a']);
  });

  it('a 404 without relay\'s problem body (a proxy\'s) is a RouteNotFoundError with the body in the message', async () => {
    proxy.script({ status: 404, headers: { 'content-type': 'text/plain' }, body: 'no such thing' });
    const err = await rejection(viaProxy().complete('q', 'j'));
    expectKind(err, RouteNotFoundError, 404);
    expect(err.problem).to.equal(undefined);
    expect(err.message).to.include('no such thing').and.include(`${proxy.url}/v1/complete`);
  });

  it('a body that is not a problem still gives the class of its status', async () => {
    proxy.script({ status: 409, headers: { 'content-type': 'text/plain' }, body: 'taken' });
    const err = await rejection(viaProxy().enqueue({ id: 'a', queue: 'q', timeout: 5 }));
    expectKind(err, JobExistsError, 409);
    expect(err.problem).to.equal(undefined);
    expect(err.message).to.include('taken');
  });

  it('a network failure is a RetryableError with reason "network" and the cause', async () => {
    const client = new RelayClient({ baseUrl: `http://127.0.0.1:${await closedPort()}`, retry: false });
    const err = (await rejection(client.health())) as RetryableError;
    expectKind(err, RetryableError, undefined);
    expect(err.reason).to.equal('network');
    expect(err.cause).to.be.instanceOf(Error);
    expect(err.message).to.include('GET /health').and.include('ECONNREFUSED');
    expect(err.problem).to.equal(undefined);
  });

  it('a timeout is a RetryableError with reason "timeout"', async () => {
    proxy.script('hang');
    const started = Date.now();
    const err = (await rejection(new RelayClient({ baseUrl: proxy.url, retry: false, timeoutMs: 200 }).health())) as RetryableError;
    expectKind(err, RetryableError, undefined);
    expect(err.reason).to.equal('timeout');
    expect(err.message).to.include('200 ms');
    expect(Date.now() - started).to.be.within(150, 2000);
  });

  describe('instanceof across copies of the package', () => {
    let dir: string;
    let copy: typeof import('../../client/src/errors.js');
    before(async () => {
      // A second copy of the module, as with two installed versions or a bundle beside the package.
      dir = await mkdtemp(join(tmpdir(), 'relay-errors-copy-'));
      await copyFile('client/src/errors.ts', join(dir, 'errors.ts'));
      copy = await import(pathToFileURL(join(dir, 'errors.ts')).href);
      expect(copy.RelayError).not.to.equal(RelayError);
    });
    after(() => rm(dir, { recursive: true, force: true }));

    it('an error from this copy is an instance of the other copy\'s classes, and only of the right ones', async () => {
      const err = await rejection(c().complete(uniqueQueue(), 'ghost'));
      expect(err instanceof copy.JobNotFoundError).to.equal(true);
      expect(err instanceof copy.RelayError).to.equal(true);
      expect(err instanceof copy.JobExistsError).to.equal(false);
      expect(err instanceof copy.RetryableError).to.equal(false);
    });

    it('an error made by the other copy is an instance of this copy\'s classes', () => {
      const context = { method: 'GET', path: '/v1/next', attempts: 3, afterUncertainAttempt: false };
      const err: unknown = copy.toRelayError({ type: 'response', status: 429, body: undefined, retryAfterMs: 1000 }, context);
      expect(err).to.be.instanceOf(RetryableError);
      expect(err).to.be.instanceOf(RelayError);
      expect(err).not.to.be.instanceOf(ValidationError);
      expect((err as RetryableError).name).to.equal('RetryableError');
    });

    it('plain values and other errors are no RelayError', () => {
      for (const value of [null, undefined, 42, 'RelayError', {}, new Error('x'), { name: 'RelayError', status: 400 }]) {
        expect(value instanceof RelayError).to.equal(false);
        expect(value instanceof ValidationError).to.equal(false);
      }
    });
  });
});
