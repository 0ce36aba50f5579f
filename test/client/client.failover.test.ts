import { expect } from 'chai';
import { RelayClient, RetryableError, type RelayClientOptions, type RetryEvent } from '../../client/src/index.js';
import { TestProxy } from '../helpers/proxy.js';
import { drain, eventually, relay, uniqueQueue } from '../helpers/relay.js';
import { rejection } from '../helpers/rejection.js';

/*
 * A client given several servers of one database. Each "server" here is a proxy in front of
 * the suite's real relay server, so that both share its database on either backend, and a
 * test can take one away (refused connections), make it answer an error, or cut an answer,
 * and see where every request went.
 */

const unavailable = { status: 503, body: { type: 'urn:x', title: 'Service Unavailable', status: 503, detail: 'down' } };
const tooMany = { status: 429, headers: { 'Retry-After': '1' }, body: { type: 'urn:x', title: 'Too Many Requests', status: 429, detail: 'busy' } };

describe('RelayClient fail-over: several base URLs', () => {
  let a: TestProxy;
  let b: TestProxy;
  let retries: RetryEvent[];
  beforeEach(async () => {
    [a, b] = await Promise.all([TestProxy.start(relay().url), TestProxy.start(relay().url)]);
    retries = [];
  });
  afterEach(async () => {
    await Promise.all([a.close(), b.close()]);
  });

  const client = (options: Partial<RelayClientOptions> = {}) =>
    new RelayClient<{ n: number }>({
      baseUrl: [a.url, b.url],
      retry: { initialDelayMs: 20, maxDelayMs: 100, onRetry: (e) => retries.push(e) },
      ...options,
    });
  const paths = (proxy: TestProxy) => proxy.requests.map((r) => r.path);

  it('takes a URL or a non-empty list of distinct http(s) URLs; baseUrl is the first', () => {
    const c = client();
    expect(c.baseUrls).to.deep.equal([a.url, b.url]);
    expect(c.baseUrl).to.equal(a.url);
    expect(c.activeUrl).to.equal(a.url);
    expect(new RelayClient({ baseUrl: a.url }).baseUrls).to.deep.equal([a.url]);
    expect(() => new RelayClient({ baseUrl: [] })).to.throw(TypeError, /non-empty list/);
    expect(() => new RelayClient({ baseUrl: [a.url, a.url] })).to.throw(TypeError, /twice/);
    expect(() => new RelayClient({ baseUrl: [a.url, 'localhost:8080'] })).to.throw(TypeError, /did you mean "http:\/\/localhost:8080"/);
  });

  it('sends everything to the first server while it answers', async () => {
    const queue = uniqueQueue();
    const c = client();
    await c.enqueue({ id: 'x', queue, timeout: 30, payload: { n: 1 } });
    const [job] = await c.next(queue);
    await c.heartbeat(queue, 'x', { runId: job!.run_id });
    await c.complete(queue, 'x', { runId: job!.run_id });
    expect(paths(a)).to.deep.equal(['/enqueue', '/v1/next', '/v1/heartbeat', '/v1/complete']);
    expect(b.requests).to.deep.equal([]);
  });

  it('moves every kind of request to the next server at once while the first refuses connections, and comes back to it', async function () {
    this.timeout(20_000);
    const queue = uniqueQueue();
    const c = client();
    await a.down();
    await c.enqueue({ id: 'x', queue, timeout: 30, payload: { n: 1 } });
    const [job] = await c.next(queue, { wait: 1 });
    await c.heartbeat(queue, 'x', { runId: job!.run_id, state: { step: 1 } });
    await c.completeBatch([{ queue, job_id: 'x', run_id: job!.run_id }]);
    expect(paths(b)).to.deep.equal(['/enqueue', '/v1/next', '/v1/heartbeat', '/v1/complete/batch']);
    // One refused connection moved it at once (no back-off wait: delay 0); later requests skip
    // the server that is backing off.
    expect(retries).to.have.length(1);
    expect(retries[0]).to.include({ delayMs: 0, uncertain: false, nextUrl: b.url });
    expect(retries[0]!.error).to.include({ reason: 'network', url: `${a.url}/enqueue` });
    expect(c.activeUrl).to.equal(b.url);

    // Back up: once its back-off is over (at most 1 s after the failure), the next request goes there again.
    await a.up();
    await eventually(async () => c.activeUrl === a.url, 3000, 50);
    await c.enqueue({ id: 'y', queue, timeout: 30 });
    expect(paths(a)).to.deep.equal(['/enqueue']);
    expect(await drain(queue)).to.have.length(1);
  });

  it('requests sent together that fail together count as one failure: the server is back after one back-off, not the longest', async function () {
    this.timeout(10_000);
    const queue = uniqueQueue();
    const c = client();
    await a.down();
    await Promise.all(Array.from({ length: 20 }, (_, i) => c.enqueue({ id: `burst-${i}`, queue, timeout: 30 })));
    expect(b.seen('/enqueue')).to.have.length(20);
    await a.up();
    await eventually(async () => c.activeUrl === a.url, 2000, 50);
    expect(await drain(queue)).to.have.length(20);
  });

  it('a server answering 503 or 429 is skipped too, the request answered by the next', async () => {
    const queue = uniqueQueue();
    const c = client();
    a.scriptFor('/enqueue', unavailable);
    await c.enqueue({ id: 'x', queue, timeout: 30 });
    expect(retries.map((r) => [r.error.status, r.delayMs, r.nextUrl])).to.deep.equal([[503, 0, b.url]]);
    expect(paths(b)).to.deep.equal(['/enqueue']);

    // b answers 429 (its database is away, say) and a is backing off still: no server is free, so
    // the client waits as Retry-After says and goes where the wait ends first.
    retries = [];
    b.scriptFor('/enqueue', tooMany);
    await c.enqueue({ id: 'y', queue, timeout: 30 });
    expect(retries).to.have.length(1);
    expect(retries[0]!.error.status).to.equal(429);
    expect(retries[0]!.delayMs).to.be.at.least(1000);
    expect(await drain(queue)).to.have.length(2);
  });

  it('a long poll under way when its server goes away moves to the next and gets the job there', async function () {
    this.timeout(15_000);
    const queue = uniqueQueue();
    const c = client();
    const polling = c.next(queue, { wait: 10 });
    await eventually(async () => a.seen('/v1/next').length === 1, 2000, 10);
    await a.down(); // cuts the waiting connection
    await eventually(async () => b.seen('/v1/next').length === 1, 2000, 10);
    await new RelayClient({ baseUrl: relay().url }).enqueue({ id: 'late', queue, timeout: 30 });
    const jobs = await polling;
    expect(jobs.map((j) => j.id)).to.deep.equal(['late']);
    // A cut long poll had no answer: uncertain, and a read, so it may move.
    expect(retries[0]).to.include({ uncertain: true, nextUrl: b.url });
  });

  it('after an attempt that may have gone through, a write with an Idempotency-Key moves; one without stays on its server', async () => {
    const queue = uniqueQueue();
    a.scriptFor('/enqueue', 'pass-then-drop');
    await client().enqueue({ id: 'keyed', queue, timeout: 30 });
    expect(paths(b), 'the keyed retry went to b, and was the first answer again').to.deep.equal(['/enqueue']);
    expect(b.seen('/enqueue')[0]!.headers['idempotency-key']).to.equal(a.seen('/enqueue')[0]!.headers['idempotency-key']);

    // Without a key the retry could store the job twice on a server that does not know of the
    // first attempt... it is the same database, but the client does not guess: it keeps it where it was.
    retries = [];
    a.scriptFor('/enqueue', 'pass-then-drop');
    const err = await rejection(client({ idempotencyKeys: false }).enqueue({ id: 'plain', queue, timeout: 30 }));
    expect(err).to.include({ name: 'JobExistsError', afterUncertainAttempt: true });
    expect(a.seen('/enqueue').map((r) => r.body.includes('plain'))).to.deep.equal([false, true, true]);
    expect(b.seen('/enqueue')).to.have.length(1);
    expect(retries[0]).to.include({ uncertain: true, nextUrl: a.url });
    // ...while a failure that certainly changed nothing moves it, key or not.
    a.scriptFor('/enqueue', unavailable);
    await client({ idempotencyKeys: false }).enqueue({ id: 'plain-2', queue, timeout: 30 });
    expect(b.seen('/enqueue').map((r) => r.body.includes('plain-2'))).to.deep.equal([false, true]);
    expect((await drain(queue)).map((j) => j.id).sort()).to.deep.equal(['keyed', 'plain', 'plain-2']);
  });

  it('every server down: waits as a single server would, and throws the last error once the attempts are used up', async () => {
    await Promise.all([a.down(), b.down()]);
    const err = await rejection<RetryableError>(client({ retry: { maxAttempts: 3, initialDelayMs: 20, maxDelayMs: 50, onRetry: (e) => retries.push(e) } }).health());
    expect(err).to.be.instanceOf(RetryableError);
    expect(err.reason).to.equal('network');
    // a, b at once; then two waits (maxAttempts counts the first attempt and each after a wait).
    expect(retries.map((r) => r.delayMs === 0)).to.deep.equal([true, false, false]);
    expect(err.attempts).to.equal(4);
  });

  it('retry: false sends one attempt, to one server', async () => {
    await a.down();
    const err = await rejection(client({ retry: false }).health());
    expect(err).to.be.instanceOf(RetryableError);
    expect(b.requests).to.deep.equal([]);
  });

  it("a call's onRetry is called after the client's, both with the event", async () => {
    const own: RetryEvent[] = [];
    await a.down();
    await client().health({ retry: { onRetry: (e) => own.push(e) } });
    expect(retries).to.have.length(1);
    expect(own).to.deep.equal(retries);
  });
});
