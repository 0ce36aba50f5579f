import { expect } from 'chai';
import { gzipSync } from 'node:zlib';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { RelayServer } from '../../server/src/index.js';
import { rawRequest } from '../helpers/raw-http.js';
import { call, drain, enqueue, heartbeat, next, relay, sleep, startRelay, uniqueQueue } from '../helpers/relay.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** The heap of this process (the server under test runs in it) after full collections. */
async function heapAfterGc(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(20);
  }
  return process.memoryUsage().heapUsed;
}

function host(): string {
  return new URL(relay().url).host;
}

function expectProblem(res: { status: number; headers: Record<string, string> | Headers; json?: any; body?: any }, status: number) {
  expect(res.status).to.equal(status);
  const type = res.headers instanceof Headers ? res.headers.get('content-type') : res.headers['content-type'];
  expect(type).to.match(/^application\/problem\+json/);
  const body = 'json' in res && res.json !== undefined ? res.json : res.body;
  expect(body).to.include({ status });
  expect(body.detail).to.be.a('string').and.not.empty;
}

/** A job in flight with a known state, for heartbeat tests. */
async function leasedWithState(state: unknown) {
  const queue = uniqueQueue();
  await enqueue({ id: 'a', queue, timeout: 60, max_retries: 5, state });
  const [job] = await drain(queue);
  return { queue, job };
}

describe('request intake: what arrives before validation', () => {
  describe('an empty body is no body (relay clients send Content-Type: application/json with nothing)', () => {
    const cases: Array<[string, string]> = [
      ['Content-Length: 0 with a JSON content type', 'Content-Type: application/json\r\nContent-Length: 0\r\n\r\n'],
      ['chunked with no data', 'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
      ['Content-Length: 0 and no content type', 'Content-Length: 0\r\n\r\n'],
      ['an odd content type and no body', 'Content-Type: text/plain\r\nContent-Length: 0\r\n\r\n'],
    ];
    for (const [name, tail] of cases) {
      it(`a heartbeat with ${name} renews the lease and keeps the checkpoint`, async () => {
        const { queue, job } = await leasedWithState({ page: 7 });
        const res = await rawRequest(
          relay().url,
          `PATCH /heartbeat?queue=${encodeURIComponent(queue)}&job_id=a&run_id=${job.run_id} HTTP/1.1\r\nHost: ${host()}\r\nConnection: close\r\n${tail}`,
        );
        expect(res.status, res.body).to.equal(202);
        await call('POST', '/v1/fail', { query: { queue, job_id: 'a' }, json: { retry_in: 0 } });
        const [again] = await drain(queue);
        expect(again.state).to.deep.equal({ page: 7 });
      });
    }

    it('a JSON null body still clears the checkpoint', async () => {
      const { queue } = await leasedWithState({ page: 7 });
      expect((await heartbeat(queue, 'a', { state: null })).status).to.equal(202);
      await call('POST', '/v1/fail', { query: { queue, job_id: 'a' }, json: { retry_in: 0 } });
      const [again] = await drain(queue);
      expect(again).not.to.have.property('state');
    });

    it('a fail with an empty JSON body uses the defaults', async () => {
      const { queue, job } = await leasedWithState(undefined);
      const res = await rawRequest(
        relay().url,
        `POST /v1/fail?queue=${encodeURIComponent(queue)}&job_id=a&run_id=${job.run_id} HTTP/1.1\r\nHost: ${host()}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n`,
      );
      expect(res.status, res.body).to.equal(202);
      expect(res.json.outcome).to.equal('retrying');
    });

    for (const path of ['/enqueue/batch', '/v1/complete/batch', '/enqueue', '/reschedule']) {
      it(`POST ${path} with no body and no Content-Length is a 400, not a 500`, async () => {
        const res = await rawRequest(relay().url, `POST ${path} HTTP/1.1\r\nHost: ${host()}\r\nConnection: close\r\nContent-Type: application/json\r\n\r\n`);
        expectProblem(res, 400);
        const empty = await call('POST', path, { raw: '', headers: { 'content-type': 'application/json' } });
        expectProblem(empty, 400);
      });
    }
  });

  describe('media types and encodings', () => {
    it('415 for a body that is not application/json, and for a charset other than UTF-8', async () => {
      const queue = uniqueQueue();
      const body = JSON.stringify({ id: 'a', queue, timeout: 5 });
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', 'x/y; n=1']) {
        expectProblem(await call('POST', '/enqueue', { raw: body, headers: { 'content-type': type } }), 415);
      }
      expect((await call('POST', '/enqueue', { raw: body, headers: { 'content-type': 'Application/JSON; Charset="UTF-8"' } })).status).to.equal(202);
      expect(await drain(queue)).to.have.length(1);
    });

    it('415 for any Content-Encoding but identity, valid or not; nothing is stored', async () => {
      const queue = uniqueQueue();
      const json = JSON.stringify({ id: 'a', queue, timeout: 5 });
      for (const [encoding, body] of [
        ['gzip', gzipSync(json)],
        ['gzip', Buffer.from('not gzip at all')],
        ['deflate', Buffer.from('garbage')],
        ['br', Buffer.from('garbage')],
      ] as const) {
        const res = await call('POST', '/enqueue', { raw: body, headers: { 'content-type': 'application/json', 'content-encoding': encoding } });
        expectProblem(res, 415);
      }
      expect((await next(queue)).status).to.equal(204);
    });

    it('a route without a request body ignores any body: /health answers 200 to a probe sending odd things', async () => {
      const odd: Array<[Buffer | string, Record<string, string>]> = [
        ['{bad', { 'content-type': 'application/json' }],
        [Buffer.from('not gzip'), { 'content-type': 'application/json', 'content-encoding': 'gzip' }],
        [Buffer.alloc(20 * 1024 * 1024, 'x'), { 'content-type': 'application/json' }],
      ];
      for (const [raw, headers] of odd) {
        const res = await call('GET', '/health', { raw, headers: { ...headers } }).catch(async () =>
          // fetch refuses a GET with a body: send it by hand.
          rawRequest(
            relay().url,
            Buffer.concat([
              Buffer.from(`GET /health HTTP/1.1\r\nHost: ${host()}\r\nConnection: close\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}Content-Length: ${Buffer.byteLength(raw)}\r\n\r\n`),
              Buffer.from(raw),
            ]),
            30_000,
          ),
        );
        expect(res.status).to.equal(200);
      }
    });

    it('memory stays bounded over 20 000 requests, each with a Content-Type of its own', async function () {
      this.timeout(120_000);
      const queue = uniqueQueue();
      const before = await heapAfterGc();
      for (let i = 0; i < 20_000; i += 100) {
        await Promise.all(
          Array.from({ length: 100 }, (_, j) =>
            call('POST', '/enqueue', { raw: JSON.stringify({ id: String(i + j), queue, timeout: 5 }), headers: { 'content-type': `application/json; n=${i + j}` } }),
          ),
        );
      }
      await Promise.all(
        Array.from({ length: 100 }, (_, j) =>
          call('PATCH', '/v1/heartbeat', { query: { queue, job_id: 'x' }, raw: '{}', headers: { 'content-type': `application/json; charset=utf-8; v=${j}` } }),
        ),
      );
      const after = await heapAfterGc();
      console.log(`      heap before ${(before / 1e6).toFixed(1)} MB, after ${(after / 1e6).toFixed(1)} MB`);
      expect(after - before, 'heap growth').to.be.below(16 * 1024 * 1024);
      expect(await drain(queue)).to.have.length(0);
    });

    it('memory stays bounded over compression bombs and batches full of errors', async function () {
      this.timeout(120_000);
      // 16 MiB of zeros in 16 KiB: inflated, each would have cost the whole body limit.
      const bomb = gzipSync(Buffer.alloc(16 * 1024 * 1024, 0x20));
      const badBatch = `[${Array.from({ length: 10_000 }, () => '{"x":1,"y":2}').join(',')}]`;
      const before = await heapAfterGc();
      let peak = before;
      const sample = setInterval(() => (peak = Math.max(peak, process.memoryUsage().heapUsed)), 5);
      try {
        for (let i = 0; i < 10; i++) {
          const answers = await Promise.all([
            ...Array.from({ length: 10 }, () => call('POST', '/enqueue/batch', { raw: bomb, headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } })),
            ...Array.from({ length: 5 }, () => call('POST', '/enqueue/batch', { raw: badBatch, headers: { 'content-type': 'application/json' } })),
          ]);
          for (const a of answers) {
            expect([400, 415]).to.include(a.status);
            expect(a.text.length, 'a short problem body').to.be.below(4_000);
          }
        }
      } finally {
        clearInterval(sample);
      }
      const after = await heapAfterGc();
      console.log(`      heap before ${(before / 1e6).toFixed(1)} MB, peak ${(peak / 1e6).toFixed(1)} MB, after ${(after / 1e6).toFixed(1)} MB`);
      expect(after - before, 'heap growth').to.be.below(16 * 1024 * 1024);
      // Five 10 000-element batches parsed at once are in memory together; no inflated body is.
      expect(peak - before, 'peak heap over the traffic').to.be.below(200 * 1024 * 1024);
    });
  });

  describe('size limits are checked before the elements are', () => {
    it('a 200 000-element batch of {} is refused at once, and /health answers meanwhile', async function () {
      this.timeout(60_000);
      const body = `[${Array.from({ length: 200_000 }, () => '{}').join(',')}]`;
      const started = Date.now();
      const refused = call('POST', '/enqueue/batch', { raw: body, headers: { 'content-type': 'application/json' } });
      const health = await call('GET', '/health');
      const res = await refused;
      const elapsed = Date.now() - started;
      console.log(`      200 000-element batch answered in ${elapsed} ms`);
      expect(health.status).to.equal(200);
      expectProblem(res, 400);
      expect(res.body.detail).to.match(/200000 items; at most 10000/);
      expect(res.text.length).to.be.below(2_000);
    });

    it('a batch of 10 000 invalid elements gets a short answer naming the first problem', async function () {
      this.timeout(60_000);
      const body = `[${Array.from({ length: 10_000 }, () => '{"x":1}').join(',')}]`;
      const res = await call('POST', '/enqueue/batch', { raw: body, headers: { 'content-type': 'application/json' } });
      expectProblem(res, 400);
      expect(res.body.errors.length).to.be.within(1, 20);
      expect(res.text.length).to.be.below(4_000);
    });

    it('a completion batch over its maxItems is refused before validation', async () => {
      const refs = Array.from({ length: 1001 }, (_, i) => ({ queue: 'q', job_id: String(i) }));
      const res = await call('POST', '/v1/complete/batch', { json: refs });
      expectProblem(res, 400);
      expect(res.body.detail).to.match(/at most 1000/);
    });

    it('a heartbeat state nested 6 000 levels deep is a 400, the job keeps its state', async () => {
      const { queue, job } = await leasedWithState({ ok: true });
      const deep = `${'{"a":'.repeat(6000)}1${'}'.repeat(6000)}`;
      const res = await call('PATCH', '/v1/heartbeat', { query: { queue, job_id: 'a', run_id: job.run_id }, raw: deep, headers: { 'content-type': 'application/json' } });
      expectProblem(res, 400);
      expect(res.body.detail).to.match(/nested more than 128 levels/);
      const ok = `${'['.repeat(127)}1${']'.repeat(127)}`;
      const fine = await call('PATCH', '/v1/heartbeat', { query: { queue, job_id: 'a', run_id: job.run_id }, raw: ok, headers: { 'content-type': 'application/json' } });
      expect(fine.status).to.equal(202);
    });

    it('a number beyond a double in a payload is a 400 (it would come back as null)', async () => {
      const queue = uniqueQueue();
      const res = await call('POST', '/enqueue', { raw: `{"id":"a","queue":${JSON.stringify(queue)},"timeout":5,"payload":{"n":1e400}}`, headers: { 'content-type': 'application/json' } });
      expectProblem(res, 400);
      expect(res.body.errors[0].path).to.equal('/body/payload/n');
    });

    it('a 400 lists at most 20 errors', async () => {
      const job: Record<string, unknown> = { id: 'a', queue: 'q', timeout: 5 };
      for (let i = 0; i < 5_000; i++) job[`unknown${i}`] = i;
      const res = await call('POST', '/enqueue', { json: job });
      expectProblem(res, 400);
      expect(res.body.errors.length).to.be.within(1, 20);
    });
  });

  describe("answers Node gives before Express runs are problem+json", () => {
    it('a stray byte after a complete request does not take the answer of that request', async () => {
      const queue = uniqueQueue();
      const body = JSON.stringify({ id: 'a', queue, timeout: 60 });
      const res = await rawRequest(
        relay().url,
        `POST /enqueue HTTP/1.1\r\nHost: ${host()}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body} `,
      );
      expect(res.status, res.body).to.equal(202);
      expect(await drain(queue)).to.have.length(1);
    });

    it('HTTP/1.1 without Host is answered by the API; CONNECT gets a 405 problem', async () => {
      expect((await rawRequest(relay().url, 'GET /health HTTP/1.1\r\nConnection: close\r\n\r\n')).status).to.equal(200);
      expectProblem(await rawRequest(relay().url, `CONNECT ${host()} HTTP/1.1\r\nHost: ${host()}\r\n\r\n`), 405);
    });

    it('paths are exact: case or a trailing slash is no path of the API, checked like any other', async () => {
      for (const [method, path] of [['POST', '/enqueue/batch/'], ['GET', '/V1/NEXT'], ['POST', '/enqueue/'], ['GET', '/health/']] as const) {
        const res = await call(method, path, method === 'POST' ? { raw: '[]', headers: { 'content-type': 'application/json' } } : { query: { queue: 'q', wait: '1e309' } });
        expectProblem(res, 404);
      }
    });

    it('a Content-Type per request on routes without a body does not grow memory', async function () {
      this.timeout(120_000);
      const before = await heapAfterGc();
      for (let i = 0; i < 8_000; i += 100) {
        await Promise.all(Array.from({ length: 100 }, (_, j) => call('GET', '/v1/next', { query: { queue: 'q' }, headers: { 'content-type': `text/plain; n=${i + j}` } })));
      }
      const after = await heapAfterGc();
      expect(after - before, 'heap growth').to.be.below(16 * 1024 * 1024);
    });

    it('431 for a header section over the limit', async () => {
      const res = await rawRequest(relay().url, `GET /health HTTP/1.1\r\nHost: ${host()}\r\nX-Big: ${'x'.repeat(20_000)}\r\n\r\n`);
      expectProblem(res, 431);
    });

    it('417 for an Expect other than 100-continue', async () => {
      const res = await rawRequest(relay().url, `GET /health HTTP/1.1\r\nHost: ${host()}\r\nExpect: something-else\r\n\r\n`);
      expectProblem(res, 417);
    });

    it('a malformed HEAD request gets the problem headers without a body (found by the fuzz test)', async () => {
      for (const [status, request] of [
        [400, `HEAD /v1/queues/q/jobs/j HTTP/1.1\r\nHost: ${host()}\r\nContent-Length: abc\r\nConnection: close\r\n\r\n`],
        [431, `HEAD /health HTTP/1.1\r\nHost: ${host()}\r\nX-Big: ${'x'.repeat(20_000)}\r\n\r\n`],
      ] as const) {
        const res = await rawRequest(relay().url, request);
        expect([res.status, res.headers['content-type'], res.body]).to.deep.equal([status, 'application/problem+json', '']);
      }
    });

    it('400 for a malformed request line', async () => {
      const res = await rawRequest(relay().url, `GARBAGE\r\n\r\n`);
      expectProblem(res, 400);
    });

    for (const method of ['GET', 'OPTIONS']) {
      it(`${method} * is a 404 problem, not an HTML page`, async () => {
        const res = await rawRequest(relay().url, `${method} * HTTP/1.1\r\nHost: ${host()}\r\nConnection: close\r\n\r\n`);
        expectProblem(res, 404);
      });
    }
  });
});

describe('the answer of next', () => {
  let small: RelayServer;
  before(async () => {
    small = await startRelay({ maxResponse: 100 * 1024 });
  });
  after(async () => {
    await small?.close();
  });

  it('holds fewer jobs when their payloads are over the answer cap; the rest stay waiting, no retry spent', async () => {
    const queue = uniqueQueue();
    const jobs = Array.from({ length: 10 }, (_, i) => ({ id: String(i), queue, timeout: 300, max_retries: 0, payload: 'x'.repeat(30 * 1024) }));
    expect((await call('POST', '/enqueue/batch', { json: jobs, baseUrl: small.url })).status).to.equal(202);
    const seen: string[] = [];
    for (let round = 0; round < 10 && seen.length < 10; round++) {
      const res = await call('GET', '/v1/next', { query: { queue, num_jobs: 10 }, baseUrl: small.url });
      expect(res.status).to.equal(200);
      expect(res.body.length).to.be.within(1, 4);
      for (const job of res.body) {
        expect(job.attempt, 'released jobs spend no attempt').to.equal(1);
        seen.push(job.id);
      }
    }
    expect(seen).to.deep.equal(jobs.map((j) => j.id));
  });

  it('a job whose answer never reached its client goes back to its queue at once', async function () {
    this.timeout(30_000);
    const queue = uniqueQueue();
    // Large enough that the answer cannot be written out before the client hangs up.
    await call('POST', '/enqueue', { json: { id: 'big', queue, timeout: 300, payload: 'y'.repeat(15 * 1024 * 1024) }, baseUrl: small.url });
    const { connect } = await import('node:net');
    const { hostname, port } = new URL(small.url);
    await new Promise<void>((resolve, reject) => {
      const socket = connect(Number(port), hostname, () => {
        socket.write(`GET /v1/next?queue=${encodeURIComponent(queue)} HTTP/1.1\r\nHost: ${hostname}:${port}\r\n\r\n`);
      });
      socket.once('data', () => {
        socket.destroy();
        resolve();
      });
      socket.on('error', reject);
    });
    let again: any;
    for (let i = 0; i < 50 && !again; i++) {
      const res = await call('GET', '/v1/next', { query: { queue }, baseUrl: small.url });
      if (res.status === 200) again = res.body[0];
      else await sleep(100);
    }
    expect(again, 'delivered again long before its 300 s lease ends').to.not.equal(undefined);
    expect(again.attempt).to.equal(1);
  });
});
