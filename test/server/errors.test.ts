import { expect } from 'chai';
import { call, enqueue, next, uniqueQueue, type ApiResponse } from '../helpers/relay.js';

function expectProblem(res: ApiResponse, status: number) {
  expect(res.status).to.equal(status);
  expect(res.headers.get('content-type')).to.match(/^application\/problem\+json/);
  expect(res.body).to.include({ status });
  expect(res.body.type).to.be.a('string').and.not.empty;
  expect(res.body.title).to.be.a('string').and.not.empty;
  expect(res.body.detail).to.be.a('string').and.not.empty;
}

describe('errors', () => {
  describe('400: malformed requests change nothing', () => {
    const queue = uniqueQueue();
    const cases: Array<[string, unknown, string]> = [
      ['a missing id', { queue, timeout: 5 }, '/body/id'],
      ['a missing queue', { id: 'a', timeout: 5 }, '/body/queue'],
      ['a missing timeout', { id: 'a', queue }, '/body/timeout'],
      ['a string timeout', { id: 'a', queue, timeout: '5' }, '/body/timeout'],
      ['a fractional timeout', { id: 'a', queue, timeout: 1.5 }, '/body/timeout'],
      ['a negative timeout', { id: 'a', queue, timeout: -1 }, '/body/timeout'],
      ['a timeout over 2^31-1', { id: 'a', queue, timeout: 2147483648 }, '/body/timeout'],
      ['an unknown field (typo)', { id: 'a', queue, timeout: 5, max_retry: 3 }, '/body/max_retry'],
      ['an empty id', { id: '', queue, timeout: 5 }, '/body/id'],
      ['an id over 1024 characters', { id: 'x'.repeat(1025), queue, timeout: 5 }, '/body/id'],
      ['a queue over 255 characters', { id: 'a', queue: 'q'.repeat(256), timeout: 5 }, '/body/queue'],
      ['a number as id', { id: 7, queue, timeout: 5 }, '/body/id'],
      ['max_retries as string', { id: 'a', queue, timeout: 5, max_retries: 'many' }, '/body/max_retries'],
      ['a run_at that is not RFC 3339', { id: 'a', queue, timeout: 5, run_at: 'tomorrow' }, '/body/run_at'],
      ['an array instead of a job', [{ id: 'a', queue, timeout: 5 }], '/body'],
    ];
    for (const [name, body, path] of cases) {
      it(`rejects ${name}`, async () => {
        const res = await call('POST', '/enqueue', { json: body });
        expectProblem(res, 400);
        expect(res.body.errors.map((e: { path: string }) => e.path)).to.include(path);
      });
    }

    it('rejects bad JSON', async () => {
      const res = await call('POST', '/enqueue', { raw: '{"id": "a", "queue": ', headers: { 'content-type': 'application/json' } });
      expectProblem(res, 400);
      expect(res.body.errors).to.be.an('array').that.is.not.empty;
    });

    it('refuses a body that is not application/json with 415', async () => {
      const res = await call('POST', '/enqueue', { raw: 'id=a&queue=b', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      expectProblem(res, 415);
    });

    it('rejects a missing body', async () => {
      expectProblem(await call('POST', '/enqueue', { headers: { 'content-type': 'application/json' } }), 400);
    });

    it('stored none of the rejected jobs', async () => {
      expect((await next(queue)).status).to.equal(204);
    });
  });

  it('accepts the largest valid values', async () => {
    const queue = 'q'.repeat(255);
    const id = `${uniqueQueue()}-`.padEnd(1024, 'i');
    const res = await enqueue({ id, queue, timeout: 2147483647, max_retries: -2147483648 });
    expect(res.status).to.equal(202);
    const job = (await next(queue, 1000)).body.find((j: { id: string }) => j.id === id);
    expect(job).to.include({ timeout: 2147483647, max_retries: -2147483648 });
  });

  it('404 for an unknown path, as problem+json', async () => {
    expectProblem(await call('GET', '/v2/next'), 404);
  });

  it('405 for a known path with another method', async () => {
    expectProblem(await call('PUT', '/v1/next', { query: { queue: 'q' } }), 405);
  });

  it('413 for a body over the limit (16 MiB), storing nothing', async () => {
    const queue = uniqueQueue();
    const res = await call('POST', '/enqueue', { json: { id: 'big', queue, timeout: 5, payload: 'x'.repeat(17 * 1024 * 1024) } });
    expectProblem(res, 413);
    expect((await next(queue)).status).to.equal(204);
  });

  it('400 for a value the database could not store (a NUL character, an unpaired surrogate), storing nothing', async () => {
    const queue = uniqueQueue();
    const inPayload = await enqueue({ id: 'nul', queue, timeout: 5, payload: 'a\u0000b' });
    expectProblem(inPayload, 400);
    expect(inPayload.body.errors[0].path).to.equal('/body/payload');
    const inKey = await enqueue({ id: 'key', queue, timeout: 5, payload: { 'a\u0000': 1 } });
    expectProblem(inKey, 400);
    const surrogate = await enqueue({ id: 'sur', queue, timeout: 5, state: { s: 'x\ud800y' } });
    expectProblem(surrogate, 400);
    expect(surrogate.body.errors[0].path).to.equal('/body/state/s');
    const inId = await enqueue({ id: 'a\u0000b', queue, timeout: 5 });
    expectProblem(inId, 400);
    expect(inId.body.errors[0].path).to.equal('/body/id');
    const inQueue = await enqueue({ id: 'a', queue: `${queue}\u0000`, timeout: 5 });
    expectProblem(inQueue, 400);
    const inBatch = await call('POST', '/enqueue/batch', {
      json: [
        { id: 'ok', queue, timeout: 5 },
        { id: 'bad', queue, timeout: 5, payload: { s: '\u0000' } },
      ],
    });
    expectProblem(inBatch, 400);
    expect(inBatch.body.errors[0].path).to.equal('/body/1/payload/s');
    expect((await next(queue)).status).to.equal(204);
    for (const path of ['/v1/next', '/v1/failed']) {
      const res = await call('GET', path, { query: { queue: 'q\u0000' } });
      expectProblem(res, 400);
      expect(res.body.errors[0].path).to.equal('/query/queue');
    }
  });

  it('never leaks SQL or internals in an error detail', async () => {
    const res = await enqueue({ id: 'nul', queue: uniqueQueue(), timeout: 5, payload: '\u0000' });
    expect(res.text).not.to.match(/INSERT|SELECT|relay_jobs|\bat .*\.ts:\d+/);
  });
});
