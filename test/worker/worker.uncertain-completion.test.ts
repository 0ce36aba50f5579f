import { expect } from 'chai';
import { RelayClient } from '@relay-ts/client';
import { TestProxy } from '../helpers/proxy.js';
import { drain, eventually, relay, uniqueQueue } from '../helpers/relay.js';
import { Worker } from '../../worker/src/index.js';

/*
 * A completion whose first attempt was applied on the server but whose answer was lost (the
 * connection reset after the server committed). Without Idempotency-Key replay (a client with
 * keys off, or a server that does not take them) the retry finds no job. After such an attempt
 * a "not found" means "completed", on the batched path as on the one-by-one path, and a log
 * line about a completion that could not be confirmed says that it may have been applied, and why.
 */

const unavailable = { status: 503, body: { type: 'urn:x', title: 'Service Unavailable', status: 503, detail: 'down' } };

describe('Worker: a completion whose answer was lost', () => {
  let proxy: TestProxy;
  beforeEach(async () => {
    proxy = await TestProxy.start(relay().url);
  });
  afterEach(() => proxy.close());

  /** A worker through the proxy, without keys, recording its events and log lines. */
  async function run(queue: string, completionBatchWindowMs: number, maxAttempts = 5) {
    const events: string[] = [];
    const warnings: Array<{ message: string; fields: Record<string, any> | undefined }> = [];
    const worker = new Worker({
      client: new RelayClient({ baseUrl: proxy.url, idempotencyKeys: false, retry: { maxAttempts, initialDelayMs: 10, maxDelayMs: 20 } }),
      queue,
      completionBatchWindowMs,
      // The completion's own request is the subject here, not a poll carrying it.
      settleOnPoll: false,
      waitSeconds: 1,
      logger: { warn: (message, fields) => warnings.push({ message, fields }) },
      process: async () => undefined,
    });
    for (const event of ['completed', 'leaseLost', 'requestError'] as const) worker.on(event, () => events.push(event));
    await new RelayClient({ baseUrl: relay().url }).enqueue({ id: 'j', queue, timeout: 30 });
    await worker.start();
    await eventually(async () => events.length > 0, 10_000, 20);
    await worker.stop();
    return { events, warnings };
  }

  for (const [path, windowMs] of [['/v1/complete/batch', 5], ['/v1/complete', 0]] as const) {
    it(`${path}: a not-found after an attempt that may have gone through is a completion, not a lost lease`, async function () {
      this.timeout(20_000);
      const queue = uniqueQueue('uncertain');
      proxy.scriptFor(path, 'pass-then-drop');
      const { events, warnings } = await run(queue, windowMs);
      expect(proxy.seen(path), 'the completion was sent again').to.have.length(2);
      expect(events).to.deep.equal(['completed']);
      expect(warnings.map((w) => w.message)).to.deep.equal([]);
      expect(await drain(queue), 'the first attempt did remove the job').to.deep.equal([]);
    });
  }

  for (const [path, windowMs] of [['/v1/complete/batch', 5], ['/v1/complete', 0]] as const) {
    it(`${path}: retries that fail after such an attempt log that the job may have been completed, naming the reset`, async function () {
      this.timeout(20_000);
      const queue = uniqueQueue('uncertain-log');
      proxy.scriptFor(path, 'pass-then-drop', unavailable, unavailable);
      const { events, warnings } = await run(queue, windowMs, 3);
      expect(events).to.deep.equal(['requestError']);
      expect(warnings).to.have.length(1);
      const [{ message, fields }] = warnings as [(typeof warnings)[number]];
      expect(message).to.match(/^the job may have been completed: an earlier attempt may have gone through \(.+\) and the retries failed; if it was not completed, it comes back when its lease expires$/);
      expect(message).not.to.match(/503/);
      // The cause of the doubt (no answer: the connection was closed) and the last error (503), both as errors.
      expect(fields!.uncertainAttemptError).to.include({ name: 'RetryableError', reason: 'network' });
      expect(message).to.include(fields!.uncertainAttemptError.message);
      expect(fields!.error).to.include({ name: 'RetryableError', status: 503, afterUncertainAttempt: true });
      expect(await drain(queue), 'the first attempt removed the job').to.deep.equal([]);
    });
  }

  it('a completion that could not be sent at all still says it comes back when its lease expires', async function () {
    this.timeout(20_000);
    const queue = uniqueQueue('unsent');
    proxy.scriptFor('/v1/complete/batch', unavailable, unavailable, unavailable);
    const { events, warnings } = await run(queue, 5, 3);
    expect(events).to.deep.equal(['requestError']);
    expect(warnings.map((w) => w.message)).to.deep.equal(['could not complete the job; it comes back when its lease expires']);
    expect(warnings[0]!.fields!.uncertainAttemptError).to.equal(undefined);
  });
});
