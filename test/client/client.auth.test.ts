import { expect } from 'chai';
import { ForbiddenError, RelayClient, RelayError, RetryableError, UnauthorizedError } from '../../client/src/index.js';
import type { RelayServer } from '../../server/src/index.js';
import { startRelay, uniqueQueue } from '../helpers/relay.js';
import { rejection } from '../helpers/rejection.js';

describe('RelayClient: the token option', () => {
  let server: RelayServer;
  const tokens = { producer: 'client-producer-token', worker: 'client-worker-token' };
  before(async () => {
    server = await startRelay({ authTokens: [{ role: 'producer', token: tokens.producer }, { role: 'worker', token: tokens.worker }] });
  });
  after(() => server?.close());

  /** A fetch that records the Authorization header of each request it sends. */
  function recording(): { fetch: typeof globalThis.fetch; sent: Array<string | null> } {
    const sent: Array<string | null> = [];
    return {
      sent,
      fetch: (input, init) => {
        const request = new Request(input, init);
        sent.push(request.headers.get('authorization'));
        return globalThis.fetch(request);
      },
    };
  }

  it('sends Authorization: Bearer <token> on every request, and the server takes it', async () => {
    const queue = uniqueQueue('token');
    const rec = recording();
    const producer = new RelayClient({ baseUrl: server.url, token: tokens.producer, fetch: rec.fetch });
    const worker = new RelayClient({ baseUrl: server.url, token: tokens.worker, fetch: rec.fetch });
    await producer.enqueue({ id: 'a', queue, timeout: 30 });
    const [job] = await worker.next(queue);
    expect(job?.id).to.equal('a');
    await worker.complete(queue, 'a', { runId: job!.run_id });
    expect(rec.sent).to.deep.equal([`Bearer ${tokens.producer}`, `Bearer ${tokens.worker}`, `Bearer ${tokens.worker}`]);
  });

  it('a 401 is an UnauthorizedError, not retried', async () => {
    for (const token of [undefined, 'not-the-token']) {
      const rec = recording();
      const client = new RelayClient({ baseUrl: server.url, token, fetch: rec.fetch, retry: { maxAttempts: 5, initialDelayMs: 1 } });
      const err = await rejection<RelayError>(client.enqueue({ id: 'a', queue: uniqueQueue(), timeout: 30 }));
      expect(err).to.be.instanceOf(UnauthorizedError);
      expect(err).not.to.be.instanceOf(RetryableError);
      expect(err.status).to.equal(401);
      expect(err.attempts).to.equal(1);
      expect(rec.sent).to.have.length(1);
      if (token) expect(err.message).not.to.include(token);
    }
  });

  it('a 403 (a role the operation does not take) is a ForbiddenError, not retried', async () => {
    const rec = recording();
    const client = new RelayClient({ baseUrl: server.url, token: tokens.producer, fetch: rec.fetch, retry: { maxAttempts: 5, initialDelayMs: 1 } });
    const err = await rejection<RelayError>(client.next(uniqueQueue()));
    expect(err).to.be.instanceOf(ForbiddenError);
    expect(err.status).to.equal(403);
    expect(err.problem?.type).to.equal('urn:relay-ts:problem:forbidden');
    expect(rec.sent).to.have.length(1);
  });

  it('health needs no token', async () => {
    expect((await new RelayClient({ baseUrl: server.url }).health()).status).to.equal('ok');
  });

  it('a token no header can carry is refused by the constructor, without repeating it', () => {
    for (const token of ['', 'has space', 'line\nbreak']) {
      expect(() => new RelayClient({ baseUrl: server.url, token })).to.throw(TypeError).with.property('message').that.does.not.include(token || '\u0000');
    }
  });
});
