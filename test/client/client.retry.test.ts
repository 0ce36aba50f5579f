import { expect } from 'chai';
import {
  JobExistsError, JobNotFoundError, PayloadTooLargeError, PermanentError, RelayClient, RelayError, RetryableError, ValidationError,
  type RetryEvent, type RetryOptions,
} from '../../client/src/index.js';
import { TestProxy } from '../helpers/proxy.js';
import { relay, startRelay, uniqueQueue } from '../helpers/relay.js';
import { rejection } from '../helpers/rejection.js';


const tooMany = (retryAfter: string) => ({
  status: 429,
  headers: { 'Retry-After': retryAfter },
  body: { type: 'urn:relay-ts:problem:storage-unavailable', title: 'Too Many Requests', status: 429, detail: 'the database is busy' },
});
const unavailable = { status: 503, body: { type: 'urn:x', title: 'Service Unavailable', status: 503, detail: 'down' } };

describe('RelayClient retries', () => {
  let proxy: TestProxy;
  let retries: RetryEvent[];
  beforeEach(async () => {
    proxy = await TestProxy.start(relay().url);
    retries = [];
  });
  afterEach(() => proxy.close());

  /** A client through the proxy that records its retries; fast backoff unless told otherwise. */
  const client = (retry: RetryOptions = {}, timeoutMs?: number, idempotencyKeys = true) =>
    new RelayClient<{ n: number }>({
      baseUrl: proxy.url,
      timeoutMs,
      idempotencyKeys,
      retry: { initialDelayMs: 20, maxDelayMs: 100, onRetry: (e) => retries.push(e), ...retry },
    });

  it('retries 429 after the Retry-After the server gives, then succeeds', async function () {
    this.timeout(20_000);
    const queue = uniqueQueue();
    proxy.script(tooMany('1'), tooMany('1'));
    const started = Date.now();
    await client().enqueue({ id: 'a', queue, timeout: 30, payload: { n: 1 } });
    const elapsed = Date.now() - started;

    expect(proxy.seen('/enqueue')).to.have.length(3);
    expect(retries.map((r) => r.attempt)).to.deep.equal([1, 2]);
    for (const r of retries) {
      expect(r.delayMs).to.be.at.least(1000);
      expect(r.error).to.be.instanceOf(RetryableError);
      expect(r.error.retryAfterMs).to.equal(1000);
    }
    expect(elapsed).to.be.at.least(2000);
    const jobs = await client().next(queue, { numJobs: 10 });
    expect(jobs.map((j) => j.payload)).to.deep.equal([{ n: 1 }]);
  });

  it('rides out a server that is down and comes back', async () => {
    const queue = uniqueQueue();
    await proxy.down();
    setTimeout(() => void proxy.up(), 700);
    const started = Date.now();
    await client({ initialDelayMs: 100, maxDelayMs: 200, maxAttempts: 30 }).enqueue({ id: 'a', queue, timeout: 30 });
    expect(Date.now() - started).to.be.at.least(600);
    expect(retries.length).to.be.at.least(1);
    expect(retries.every((r) => r.error.reason === 'network')).to.equal(true);
    expect(proxy.seen('/enqueue')).to.have.length(1);
    expect(await client().next(queue, { numJobs: 10 })).to.have.length(1);
  });

  it('stops after maxAttempts and throws the last RetryableError', async () => {
    proxy.always(unavailable);
    const err = await rejection(client({ maxAttempts: 3 }).health());
    expect(err).to.be.instanceOf(RetryableError);
    expect(err).to.include({ status: 503, attempts: 3 });
    expect(proxy.seen('/health')).to.have.length(3);
    expect(retries).to.have.length(2);
  });

  it('stops when the next retry would start after maxElapsedMs', async function () {
    this.timeout(10_000);
    proxy.always(tooMany('1'));
    const started = Date.now();
    const err = await rejection(client({ maxAttempts: 10, maxElapsedMs: 1500 }).health());
    expect(err).to.be.instanceOf(RetryableError);
    expect(proxy.seen('/health')).to.have.length(2);
    expect(Date.now() - started).to.be.below(1500);
  });

  it('gives up at once when Retry-After is beyond the time left, reporting the delay', async () => {
    proxy.always(tooMany('30'));
    const started = Date.now();
    const err = await rejection(client({ maxElapsedMs: 5000 }).health());
    expect(err).to.be.instanceOf(RetryableError);
    expect((err as RetryableError).retryAfterMs).to.equal(30_000);
    expect(proxy.seen('/health')).to.have.length(1);
    expect(Date.now() - started).to.be.below(1000);
  });

  it('backs off exponentially with full jitter, capped at maxDelayMs', async () => {
    proxy.always(unavailable);
    await rejection(client({ maxAttempts: 7, initialDelayMs: 40, maxDelayMs: 200 }).health());
    expect(retries.map((r) => r.attempt)).to.deep.equal([1, 2, 3, 4, 5, 6]);
    retries.forEach((r, i) => expect(r.delayMs).to.be.within(0, Math.min(200, 40 * 2 ** i)));
  });

  it('retries a timed-out attempt', async () => {
    const queue = uniqueQueue();
    proxy.script('hang');
    await client({}, 300).next(queue);
    expect(proxy.seen('/v1/next')).to.have.length(2);
    expect(retries.map((r) => r.error.reason)).to.deep.equal(['timeout']);
  });

  it('lengthens the timeout of next by its wait (long poll)', async () => {
    const queue = uniqueQueue();
    await client().enqueueBatch([{ id: 'a', queue, timeout: 30 }, { id: 'b', queue, timeout: 30 }]);
    // The answer comes 700 ms late: within 300 ms + 1 s of wait, past 300 ms without.
    proxy.script({ delayMs: 700 });
    expect(await client({ maxAttempts: 1 }, 300).next(queue, { wait: 1 })).to.have.length(1);
    proxy.script({ delayMs: 700 });
    const err = await rejection(client({ maxAttempts: 1 }, 300).next(queue));
    expect(err).to.be.instanceOf(RetryableError).with.property('reason', 'timeout');
  });

  it('timeoutMs: 0 turns the timeout off, also for a long poll', async () => {
    const queue = uniqueQueue();
    await client().enqueue({ id: 'a', queue, timeout: 30 });
    proxy.script({ delayMs: 600 });
    expect(await client({ maxAttempts: 1 }, 0).next(queue, { wait: 0.1 })).to.have.length(1);
    expect(retries).to.be.empty;
  });

  describe('no retry where the same request cannot succeed', () => {
    const cases: Array<[string, new (...args: never[]) => RelayError, (c: RelayClient<{ n: number }>, queue: string) => Promise<unknown>, string]> = [
      ['400', ValidationError, (c, queue) => c.enqueue({ id: 'a', queue, timeout: -1 }), '/enqueue'],
      ['404', JobNotFoundError, (c, queue) => c.complete(queue, 'ghost'), '/v1/complete'],
      // A 422 comes from the database itself (a constraint or trigger): scripted here.
      ['422', PermanentError, (c, queue) => {
        proxy.script({ status: 422, body: { type: 'urn:relay-ts:problem:unprocessable', title: 'Unprocessable Content', status: 422, detail: 'refused' } });
        return c.enqueue({ id: 'a', queue, timeout: 5 });
      }, '/enqueue'],
    ];
    for (const [status, cls, act, path] of cases) {
      it(`${status}: one request`, async () => {
        const err = await rejection(act(client({ maxAttempts: 5 }), uniqueQueue()));
        expect(err).to.be.instanceOf(cls);
        expect(proxy.seen(path)).to.have.length(1);
        expect(retries).to.be.empty;
      });
    }

    it('409: one request', async () => {
      const queue = uniqueQueue();
      await client().enqueue({ id: 'a', queue, timeout: 5 });
      const err = await rejection(client({ maxAttempts: 5 }).enqueue({ id: 'a', queue, timeout: 5 }));
      expect(err).to.be.instanceOf(JobExistsError);
      expect(proxy.seen('/enqueue')).to.have.length(2);
      expect(retries).to.be.empty;
    });

    it('413: one request', async () => {
      const small = await startRelay({ maxBody: 1024 });
      const smallProxy = await TestProxy.start(small.url);
      try {
        const c = new RelayClient({ baseUrl: smallProxy.url, retry: { maxAttempts: 5, initialDelayMs: 1, onRetry: (e) => retries.push(e) } });
        const err = await rejection(c.enqueue({ id: 'a', queue: uniqueQueue(), timeout: 5, payload: 'x'.repeat(4096) }));
        expect(err).to.be.instanceOf(PayloadTooLargeError);
        expect(smallProxy.seen('/enqueue')).to.have.length(1);
        expect(retries).to.be.empty;
      } finally {
        await smallProxy.close();
        await small.close();
      }
    });
  });

  describe('turning retries off', () => {
    it('retry: false on the client sends one attempt', async () => {
      proxy.always(unavailable);
      const err = await rejection(new RelayClient({ baseUrl: proxy.url, retry: false }).health());
      expect(err).to.include({ attempts: 1 });
      expect(proxy.seen('/health')).to.have.length(1);
    });

    it('retry: false on one call sends one attempt; other calls still retry', async () => {
      proxy.script(unavailable);
      const c = client();
      expect(await rejection(c.health({ retry: false }))).to.be.instanceOf(RetryableError);
      proxy.script(unavailable);
      expect(await c.health()).to.have.property('status', 'ok');
      expect(proxy.seen('/health')).to.have.length(3);
    });

    it('a call\'s retry options override the client\'s', async () => {
      proxy.always(unavailable);
      await rejection(client({ maxAttempts: 10 }).health({ retry: { maxAttempts: 2 } }));
      expect(proxy.seen('/health')).to.have.length(2);
    });
  });

  describe('AbortSignal', () => {
    it('aborting a request in flight rejects with the abort reason, without retry', async () => {
      proxy.script('hang');
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 100);
      const err = await rejection(client().health({ signal: controller.signal }));
      expect(err).not.to.be.instanceOf(RelayError);
      expect(err).to.have.property('name', 'AbortError');
      expect(proxy.seen('/health')).to.have.length(1);
      expect(retries).to.be.empty;
    });

    it('aborting during the backoff stops the retries at once', async () => {
      proxy.always(tooMany('10'));
      const controller = new AbortController();
      const reason = new Error('shutting down');
      setTimeout(() => controller.abort(reason), 200);
      const started = Date.now();
      const err = await rejection(client({ maxElapsedMs: 60_000 }).health({ signal: controller.signal }));
      expect(err).to.equal(reason);
      expect(Date.now() - started).to.be.below(2000);
      expect(proxy.seen('/health')).to.have.length(1);
    });

    it('an already aborted signal sends nothing', async () => {
      const err = await rejection(client().health({ signal: AbortSignal.abort() }));
      expect(err).to.have.property('name', 'AbortError');
      expect(proxy.requests).to.be.empty;
    });
  });

  describe('when an earlier attempt may have been carried out', () => {
    it('a retried enqueue whose lost first attempt stored the job: with keys, the first answer; without, JobExistsError marked afterUncertainAttempt', async () => {
      const queue = uniqueQueue();
      proxy.script('pass-then-drop');
      await client().enqueue({ id: 'k', queue, timeout: 30, payload: { n: 0 } });
      proxy.script('pass-then-drop');
      // A server without Idempotency-Key support (or a client with keys off): the retry finds the job.
      const err = await rejection(client({}, undefined, false).enqueue({ id: 'a', queue, timeout: 30, payload: { n: 1 } }));
      expect(err).to.be.instanceOf(JobExistsError);
      expect(err).to.include({ attempts: 2, afterUncertainAttempt: true });
      const jobs = await client().next(queue, { numJobs: 10 });
      expect(jobs.map((j) => j.payload)).to.deep.equal([{ n: 0 }, { n: 1 }]);
    });

    it('a 409 after attempts the server refused (429) is not marked', async () => {
      const queue = uniqueQueue();
      await client().enqueue({ id: 'a', queue, timeout: 30 });
      proxy.script(tooMany('0'));
      const err = await rejection(client().enqueue({ id: 'a', queue, timeout: 30 }));
      expect(err).to.be.instanceOf(JobExistsError);
      expect(err).to.include({ attempts: 2, afterUncertainAttempt: false });
    });

    it('without keys, a retried complete whose lost first attempt removed the job throws JobNotFoundError, marked', async () => {
      const queue = uniqueQueue();
      const c = client({}, undefined, false);
      await c.enqueue({ id: 'a', queue, timeout: 30 });
      await c.next(queue);
      proxy.script('pass-then-drop');
      const err = await rejection(c.complete(queue, 'a'));
      expect(err).to.be.instanceOf(JobNotFoundError);
      expect(err).to.include({ attempts: 2, afterUncertainAttempt: true });
    });

    it('a 409 after refused connections (the server was down) is not marked', async () => {
      const queue = uniqueQueue();
      await client().enqueue({ id: 'a', queue, timeout: 30 });
      await proxy.down();
      setTimeout(() => void proxy.up(), 500);
      const err = await rejection(client({ initialDelayMs: 100, maxDelayMs: 200, maxAttempts: 30 }).enqueue({ id: 'a', queue, timeout: 30 }));
      expect(err).to.be.instanceOf(JobExistsError);
      expect((err as JobExistsError).attempts).to.be.at.least(2);
      expect(err).to.have.property('afterUncertainAttempt', false);
      expect(retries.every((r) => r.error.reason === 'network')).to.equal(true);
    });

    it('a dropped connection before the server saw the request is retried to success', async () => {
      const queue = uniqueQueue();
      proxy.script('drop');
      await client().enqueue({ id: 'a', queue, timeout: 30 });
      expect(proxy.seen('/enqueue')).to.have.length(2);
      expect(await client().next(queue)).to.have.length(1);
    });
  });
});
