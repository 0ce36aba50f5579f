import { expect } from 'chai';
import { RelayClient, RetryableError } from '@relay-ts/client';
import { Worker } from '../../worker/src/index.js';
import { TestProxy } from '../helpers/proxy.js';
import { drain, relay, uniqueQueue } from '../helpers/relay.js';

const KEY = 'idempotency-key';

describe('RelayClient: Idempotency-Key', () => {
  let proxy: TestProxy;
  beforeEach(async () => {
    proxy = await TestProxy.start(relay().url);
  });
  afterEach(async () => {
    await proxy.close();
  });
  const client = (options: Partial<ConstructorParameters<typeof RelayClient>[0]> = {}) =>
    new RelayClient({ baseUrl: proxy.url, retry: { maxAttempts: 5, initialDelayMs: 10 }, ...options });

  it('sends a key with every write, the same on each attempt of a call: an enqueue whose answer was lost is stored once', async () => {
    const queue = uniqueQueue();
    // The server stores the job, and its answer never reaches the client.
    proxy.scriptFor('/enqueue', 'pass-then-drop');
    await client().enqueue({ id: 'a', queue, timeout: 30 });
    const [first, second] = proxy.seen('/enqueue');
    expect(first!.headers[KEY]).to.be.a('string').and.not.empty;
    expect(second!.headers[KEY], 'the retry carries the same key').to.equal(first!.headers[KEY]);
    expect(await drain(queue)).to.have.length(1);

    await client().enqueue({ id: 'b', queue, timeout: 30 });
    expect(proxy.seen('/enqueue')[2]!.headers[KEY], 'a new call, a new key').not.to.equal(first!.headers[KEY]);
  });

  it('a caller-given key makes a resend in a new call safe, even after the job completed', async () => {
    const queue = uniqueQueue();
    const c = client();
    const key = `outbox-row-${queue}`;
    await c.enqueue({ id: 'x', queue, timeout: 30 }, { idempotencyKey: key });
    const [job] = await drain(queue);
    await c.complete(queue, 'x', { runId: job.run_id });
    // A process restart resends the same outbox row: no second job, no JobExistsError.
    await c.enqueue({ id: 'x', queue, timeout: 30 }, { idempotencyKey: key });
    expect(await drain(queue)).to.deep.equal([]);
    // Batches split into several requests give each its own key, derived from the caller's.
    await c.enqueueBatch(Array.from({ length: 3 }, (_, i) => ({ id: `b${i}`, queue, timeout: 30 })), { idempotencyKey: `${key}-batch`, maxBatchSize: 2 });
    const keys = proxy.seen('/enqueue/batch').map((r) => r.headers[KEY]);
    expect(keys).to.deep.equal([`${key}-batch#0`, `${key}-batch#1`]);
  });

  it('a complete whose answer was lost is a completion, not a 404', async () => {
    const queue = uniqueQueue();
    const c = client();
    await c.enqueue({ id: 'c', queue, timeout: 30 });
    const [job] = await c.next(queue);
    proxy.scriptFor('/v1/complete', 'pass-then-drop');
    await c.complete(queue, 'c', { runId: job!.run_id });
    const [first, second] = proxy.seen('/v1/complete');
    expect(second!.headers[KEY]).to.equal(first!.headers[KEY]);
  });

  it('retries a 409 for a key still in use (the first request is being processed)', async () => {
    const queue = uniqueQueue();
    proxy.scriptFor('/enqueue', {
      status: 409,
      body: { type: 'urn:relay-ts:problem:idempotency-key-in-use', title: 'Conflict', status: 409, detail: 'in use' },
    });
    await client().enqueue({ id: 'r', queue, timeout: 30 });
    expect(proxy.seen('/enqueue')).to.have.length(2);
    expect(await drain(queue)).to.have.length(1);
    proxy.scriptFor('/enqueue', { status: 409, body: { type: 'urn:relay-ts:problem:idempotency-key-in-use', title: 'Conflict', status: 409, detail: 'in use' } });
    const refused = await client({ retry: false }).enqueue({ id: 'r3', queue, timeout: 30 }).catch((e: unknown) => e);
    expect(refused).to.be.instanceOf(RetryableError);
  });

  it('idempotencyKeys: false sends no key', async () => {
    await client({ idempotencyKeys: false }).enqueue({ id: 'n', queue: uniqueQueue(), timeout: 30 });
    expect(proxy.seen('/enqueue')[0]!.headers[KEY]).to.equal(undefined);
  });

  it('fault: answers lost after the server committed, the client resending: exactly one job, exactly one run', async function () {
    this.timeout(30_000);
    const queue = uniqueQueue();
    const producer = client();
    proxy.scriptFor('/enqueue', 'pass-then-drop');
    proxy.scriptFor('/v1/complete/batch', 'pass-then-drop');
    proxy.scriptFor('/v1/complete', 'pass-then-drop');
    await producer.enqueue({ id: 'once', queue, timeout: 30 });
    let runs = 0;
    let lost = 0;
    const worker = new Worker({
      client: client(),
      queue,
      logger: {},
      // The keyed completion request is the subject here, not a poll carrying it.
      settleOnPoll: false,
      async process() {
        runs++;
      },
    });
    worker.on('leaseLost', () => lost++);
    const completed = new Promise<void>((resolve) => worker.once('completed', () => resolve()));
    await worker.start();
    await completed;
    await worker.stop();
    expect(runs, 'runs').to.equal(1);
    expect(lost, 'reported as a lost lease').to.equal(0);
    const completions = [...proxy.seen('/v1/complete/batch'), ...proxy.seen('/v1/complete')];
    expect(completions.length, 'the completion was resent').to.be.at.least(2);
    expect(new Set(completions.map((r) => r.headers[KEY])).size, 'with one key').to.equal(1);
    expect(await drain(queue), 'nothing left, nothing stored twice').to.deep.equal([]);
  });
});
