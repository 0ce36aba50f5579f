import { expect } from 'chai';
import { connect, type Socket } from 'node:net';
import type { RelayServer } from '../../server/src/index.js';
import { rawRequest } from '../helpers/raw-http.js';
import { call, drain, enqueue, eventually, relay, sleep, startRelay, uniqueQueue } from '../helpers/relay.js';

function openSocket(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => resolve(socket));
    socket.on('error', reject);
  });
}

describe('server-wide caps answer 429 with Retry-After, never a crash', () => {
  let server: RelayServer;
  afterEach(async () => {
    await server?.close();
  });

  it('a long poll over --max-waiting-polls is refused; polls without wait still work', async () => {
    server = await startRelay({ maxWaitingPolls: 3 });
    const queue = uniqueQueue();
    const waiting = Array.from({ length: 3 }, () => call('GET', '/v1/next', { query: { queue, wait: 2 }, baseUrl: server.url }));
    await sleep(300);
    const refused = await call('GET', '/v1/next', { query: { queue, wait: 5 }, baseUrl: server.url });
    expect(refused.status).to.equal(429);
    expect(refused.headers.get('retry-after')).to.match(/^\d+$/);
    expect(refused.headers.get('content-type')).to.match(/^application\/problem\+json/);
    expect((await call('GET', '/v1/next', { query: { queue }, baseUrl: server.url })).status).to.equal(204);
    // The waiting ones are served as usual.
    await enqueue({ id: 'a', queue, timeout: 30 }, server.url);
    const answers = await Promise.all(waiting);
    expect(answers.filter((a) => a.status === 200)).to.have.length(1);
  });

  it('a connection over --max-connections gets 429 on its requests and is closed', async () => {
    server = await startRelay({ maxHttpConnections: 2 });
    const held = [await openSocket(server.url), await openSocket(server.url)];
    try {
      const res = await rawRequest(server.url, `GET /health HTTP/1.1\r\nHost: ${new URL(server.url).host}\r\n\r\n`);
      expect(res.status).to.equal(429);
      expect(res.headers['retry-after']).to.match(/^\d+$/);
      expect(res.headers['connection']).to.equal('close');
      expect(res.json.status).to.equal(429);
    } finally {
      for (const s of held) s.destroy();
    }
    await sleep(100);
    expect((await call('GET', '/health', { baseUrl: server.url })).status).to.equal(200);
  });

  it('an idle keep-alive connection is closed after --keep-alive-timeout', async () => {
    server = await startRelay({ keepAliveTimeoutMs: 300 });
    const socket = await openSocket(server.url);
    const closed = new Promise<number>((resolve) => {
      const started = Date.now();
      socket.on('close', () => resolve(Date.now() - started));
    });
    socket.resume();
    socket.write(`GET /health HTTP/1.1\r\nHost: ${new URL(server.url).host}\r\n\r\n`);
    const after = await Promise.race([closed, sleep(10_000).then(() => -1)]);
    socket.destroy();
    expect(after, 'closed by the server').to.be.above(0);
  });

  it('shutdown does not wait for a connection that never sent a request', async () => {
    server = await startRelay();
    const silent = await openSocket(server.url);
    silent.on('error', () => undefined);
    const started = Date.now();
    await server.close();
    expect(Date.now() - started, 'closed at once, not at a timeout').to.be.below(5_000);
    silent.destroy();
  });

  it('a long poll of 60 s is not cut by the request timeouts', async function () {
    this.timeout(90_000);
    server = await startRelay();
    const queue = uniqueQueue();
    const started = Date.now();
    const res = await call('GET', '/v1/next', { query: { queue, wait: 60 }, baseUrl: server.url });
    expect(res.status).to.equal(204);
    expect(Date.now() - started).to.be.at.least(59_000);
  });
});

describe('many long polls on one queue', () => {
  it('2 000 waiting requests each get exactly one of 2 000 jobs enqueued one by one', async function () {
    this.timeout(120_000);
    const queue = uniqueQueue();
    const waiting = Array.from({ length: 2_000 }, () => call('GET', '/v1/next', { query: { queue, wait: 60 } }));
    await eventually(async () => relay().waitingPolls >= 2_000, 30_000, 50);
    for (let i = 0; i < 2_000; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => enqueue({ id: String(i + j), queue, timeout: 60 })));
    }
    const answers = await Promise.all(waiting);
    expect(answers.map((a) => a.status).filter((s) => s !== 200), 'every waiter answered with a job').to.deep.equal([]);
    const ids = answers.flatMap((a) => a.body.map((j: { id: string }) => j.id));
    expect(new Set(ids).size).to.equal(2_000);
  });
});

describe('the default retry backoff', () => {
  it('still answers for a job failed more than 1 024 times (the exponent is capped)', async function () {
    this.timeout(120_000);
    const queue = uniqueQueue();
    await enqueue({ id: 'a', queue, timeout: 30, max_retries: -1 });
    for (let attempt = 1; attempt <= 1030; attempt++) {
      const [job] = await drain(queue);
      expect(job?.attempt, `delivery ${attempt}`).to.equal(attempt);
      const last = attempt === 1030;
      const res = await call('POST', '/v1/fail', { query: { queue, job_id: 'a', run_id: job.run_id }, json: last ? {} : { retry_in: 0 } });
      expect(res.status, `fail ${attempt}: ${res.text}`).to.equal(202);
      if (last) {
        const delay = Date.parse(res.body.run_at) - Date.now();
        expect(delay).to.be.within(3_500_000, 3_600_000);
      }
    }
  });
});
