import { expect } from 'chai';
import express from 'express';
import fc from 'fast-check';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { defaults, parseConfig, toProblem, toRelayError, type RelayServer } from '../../server/src/index.js';
import { specPath } from '../../server/src/http/contract.js';
import { requestValidator } from '../../server/src/http/validator.js';
import { call, relay, startRelay, uniqueQueue } from '../helpers/relay.js';

/*
 * The OpenAPI validator as the server composes it (server/src/http/validator.ts): every request
 * answered as express-openapi-validator's own middleware() answers it (the server with
 * RELAY_BENCH_DISABLE=cheap-validation runs that), plain requests of the busy operations
 * without the validator's per-request preparation, and responses validated only when asked
 * (the test suite asks; production does not by default).
 */

type Case = { method: string; path: string; body?: string; headers?: Record<string, string> };

/** Names in a case that stand for a queue of each server's own, so that the two never share jobs. */
const Q = '{Q}';

const queueName = fc.constantFrom(`${Q}a`, `${Q}b`, `${Q}:c`, `${Q}%3Ad`, '', `${Q}${'x'.repeat(300)}`);
const queryValue = fc.constantFrom('', '0', '1', '5', '-1', '61', 'x', '1e3', '0x10', 'a:b', 'a%3Ab', 'a b', "a'b", '%', 'a[b]', 'é', 'a,b', 'a+b', 'true');
const queryKey = fc.constantFrom('queue', 'queue', 'num_jobs', 'wait', 'job_id', 'job_id', 'run_id', 'bogus', 'queue[x]', 'Queue', 'limit');

/** A query from pieces: declared and undeclared names, repeated names, values in and out of range, unencoded reserved characters. */
const query = fc
  .tuple(queueName, fc.array(fc.tuple(queryKey, fc.oneof(queryValue, queueName)), { maxLength: 4 }), fc.boolean())
  .map(([queue, rest, withQueue]) => {
    // `wait` only where it cannot hold the request (0 or invalid): a long poll is not what is compared.
    const pairs = rest.filter(([k, v]) => k !== 'wait' || !/^(\d|\.)/.test(v) || v === '0');
    return [...(withQueue ? [['queue', queue]] : []), ...pairs].map(([k, v]) => `${k}=${v}`).join('&');
  });

const jobField = fc.oneof(
  fc.constant(['id', 'j1']),
  fc.constant(['id', 7]),
  fc.constant(['id', '']),
  fc.constant(['timeout', -1]),
  fc.constant(['timeout', '30']),
  fc.constant(['max_retries', 1.5]),
  fc.constant(['run_at', 'yesterday']),
  fc.constant(['run_at', '2026-01-01T00:00:00Z']),
  fc.constant(['payload', { a: [1, null] }]),
  fc.constant(['state', 'x']),
  fc.constant(['extra', true]),
  fc.constant(['queue', 5]),
);
const job = fc.tuple(queueName, fc.boolean(), fc.array(jobField, { maxLength: 3 })).map(([queue, base, fields]) => ({
  ...(base ? { id: 'j0', queue, timeout: 30 } : {}),
  ...Object.fromEntries(fields),
}));
const reference = fc.record({ queue: queueName, job_id: fc.constantFrom('j0', 'j1', '', 5), run_id: fc.constantFrom('r', 7, undefined) }, { requiredKeys: [] });

const hotCase: fc.Arbitrary<Case> = fc.oneof(
  query.map((q) => ({ method: 'GET', path: `/v1/next?${q}` })),
  query.map((q) => ({ method: 'GET', path: `/next?${q}` })),
  query.map((q) => ({ method: 'DELETE', path: `/v1/complete?${q}` })),
  query.map((q) => ({ method: 'DELETE', path: `/complete?${q}` })),
  fc.tuple(query, fc.constantFrom(undefined, 'null', '{"s":1}', '[')).map(([q, body]) => ({ method: 'PATCH', path: `/v1/heartbeat?${q}`, body })),
  fc.tuple(fc.constantFrom('', '?bogus=1', '?queue=a'), job).map(([q, j]) => ({ method: 'POST', path: `/enqueue${q}`, body: JSON.stringify(j) })),
  fc.tuple(fc.constantFrom(undefined, '', 'x'.repeat(300)), job).map(([key, j]): Case => ({
    method: 'POST',
    path: '/enqueue',
    body: JSON.stringify(j),
    headers: key === undefined ? {} : { 'idempotency-key': key },
  })),
  fc.array(job, { maxLength: 3 }).map((jobs) => ({ method: 'POST', path: '/enqueue/batch', body: JSON.stringify(jobs) })),
  fc.array(reference, { maxLength: 3 }).map((refs) => ({ method: 'POST', path: '/v1/complete/batch', body: JSON.stringify(refs) })),
  fc.constantFrom<Case>(
    { method: 'GET', path: '/v1/queues/%E0%A4%A' },
    { method: 'GET', path: `/v1/queues/${Q}a/jobs/j0` },
    { method: 'GET', path: `/v1/jobs?queue=${Q}a&status=nope` },
    { method: 'GET', path: '/v1/failed?queue=&limit=0' },
    { method: 'POST', path: '/enqueue', body: '' },
    { method: 'POST', path: '/v1/fail?queue=a&job_id=j0', body: '{"error":5}' },
  ),
);

async function send(server: RelayServer, queue: string, c: Case): Promise<{ status: number; body: string }> {
  const res = await call(c.method, c.path.replaceAll(Q, queue), {
    baseUrl: server.url,
    raw: c.body?.replaceAll(Q, queue),
    headers: { ...(c.body !== undefined ? { 'content-type': 'application/json' } : {}), ...c.headers },
  });
  // A refusal is compared whole; an answer that went through, by what it handed out (leases
  // carry their own run_id and times on each server).
  const body = res.status < 300 ? JSON.stringify(Array.isArray(res.body) ? res.body.map((j: { id?: unknown }) => j.id ?? null) : null) : res.text;
  return { status: res.status, body: body.replaceAll(queue, Q) };
}

describe('the OpenAPI validator as the server composes it', () => {
  let stock: RelayServer;
  before(async () => {
    stock = await startRelay({ disabled: new Set(['cheap-validation']) });
  });
  after(() => stock?.close());

  it('answers every request as the validator\'s own middleware() does: the same status and problem body', async () => {
    const ours = uniqueQueue('ours');
    const theirs = uniqueQueue('stock');
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(hotCase, async (c) => {
        const a = await send(relay(), ours, c);
        const b = await send(stock, theirs, c);
        expect(a, `${c.method} ${c.path} ${c.body ?? ''}`).to.deep.equal(b);
        if (a.status === 400) refused++;
      }),
      { numRuns: 300, seed: 16_03 },
    );
    // The comparison covered refusals, not only requests both let through.
    expect(refused).to.be.greaterThan(50);
  });

  it('validates a plain request of a busy operation without the validator\'s per-request preparation', async () => {
    const require = createRequire(import.meta.url);
    const root = require.resolve('express-openapi-validator');
    const { RequestParameterMutator } = createRequire(root)('./middlewares/parsers/req.parameter.mutator.js') as {
      RequestParameterMutator: { prototype: { modifyRequest: (...a: unknown[]) => unknown } };
    };
    const original = RequestParameterMutator.prototype.modifyRequest;
    let prepared = 0;
    RequestParameterMutator.prototype.modifyRequest = function (this: unknown, ...a: unknown[]) {
      prepared++;
      return original.apply(this, a);
    };
    try {
      const queue = uniqueQueue('plain');
      expect((await call('POST', '/enqueue', { json: { id: 'a', queue, timeout: 30 } })).status).to.equal(202);
      const [leased] = (await call('GET', '/v1/next', { query: { queue, num_jobs: 2, wait: 0 } })).body;
      expect((await call('PATCH', '/v1/heartbeat', { query: { queue, job_id: 'a', run_id: leased.run_id }, json: { s: 1 } })).status).to.equal(202);
      expect((await call('DELETE', '/v1/complete', { query: { queue, job_id: 'a', run_id: leased.run_id } })).status).to.equal(200);
      expect((await call('GET', '/v1/next', { query: { queue, num_jobs: 1.5 } })).body.errors).to.deep.equal([
        { path: '/query/num_jobs', message: 'must be integer' },
      ]);
      expect(prepared).to.equal(0);
      // A query the validator must look at itself (a name it does not declare) still goes through its stage.
      const unknown = await call('GET', '/v1/next', { query: { queue, bogus: 1 } });
      expect(unknown.body.errors).to.deep.equal([{ path: '/query/bogus', message: "Unknown query parameter 'bogus'" }]);
      expect(prepared).to.equal(1);
    } finally {
      RequestParameterMutator.prototype.modifyRequest = original;
    }
  });
});

describe('response validation', () => {
  /** An app whose GET /health answers a body openapi.yaml does not allow. */
  async function brokenHealth(validateResponses: boolean): Promise<{ status: number; body: any }> {
    const app = express();
    app.set('case sensitive routing', true);
    app.set('strict routing', true);
    app.use(await requestValidator(app, { apiSpec: specPath(), validateResponses }));
    app.get('/health', (_req, res) => void res.status(200).json({ status: 42 }));
    app.use(((err, _req, res, _next) => void res.status(toRelayError(err).status).json(toProblem(toRelayError(err)))) as express.ErrorRequestHandler);
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/health`);
      return { status: res.status, body: await res.json() };
    } finally {
      server.close();
    }
  }

  it('is off unless asked for: by default, and with no flag or variable', () => {
    expect(defaults.validateResponses).to.equal(false);
    const parsed = parseConfig([], {});
    expect('config' in parsed && parsed.config.validateResponses).to.equal(false);
  });

  it('asked for (as the test suite asks), turns an answer that breaks openapi.yaml into a 500; not asked, lets it through', async () => {
    const on = await brokenHealth(true);
    expect(on.status).to.equal(500);
    expect(on.body.type).to.equal('urn:relay-ts:problem:internal');
    const off = await brokenHealth(false);
    expect(off).to.deep.equal({ status: 200, body: { status: 42 } });
  });
});
