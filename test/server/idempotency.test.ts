import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import yaml from 'js-yaml';
import type { RelayServer } from '../../server/src/index.js';
import { call, drain, sleep, startRelay, uniqueQueue, type CallOptions } from '../helpers/relay.js';

const keyed = (key: string, options: CallOptions = {}): CallOptions => ({ ...options, headers: { ...options.headers, 'idempotency-key': key } });
const newKey = () => `key-${randomUUID()}`;

describe('Idempotency-Key', () => {
  it('a resent enqueue after its job completed has no second effect, and gets the first answer again', async () => {
    const queue = uniqueQueue();
    const key = newKey();
    const job = { id: 'once', queue, timeout: 30 };
    const first = await call('POST', '/enqueue', keyed(key, { json: job }));
    expect(first.status).to.equal(202);
    expect(first.headers.get('idempotent-replayed')).to.equal(null);
    const [leased] = await drain(queue);
    expect((await call('DELETE', '/v1/complete', { query: { queue, job_id: 'once', run_id: leased.run_id } })).status).to.equal(200);

    const again = await call('POST', '/enqueue', keyed(key, { json: job }));
    expect(again.status).to.equal(202);
    expect(again.headers.get('idempotent-replayed')).to.equal('true');
    expect(await drain(queue), 'no second job').to.deep.equal([]);
  });

  it('without the header nothing changes: a finished id may be enqueued again (the singleton pattern)', async () => {
    const queue = uniqueQueue();
    const job = { id: 'singleton', queue, timeout: 30 };
    expect((await call('POST', '/enqueue', { json: job })).status).to.equal(202);
    const [leased] = await drain(queue);
    await call('DELETE', '/v1/complete', { query: { queue, job_id: 'singleton', run_id: leased.run_id } });
    expect((await call('POST', '/enqueue', { json: job })).status).to.equal(202);
    expect(await drain(queue)).to.have.length(1);
  });

  it('a 409 is remembered too: the resent request gets it again', async () => {
    const queue = uniqueQueue();
    await call('POST', '/enqueue', { json: { id: 'taken', queue, timeout: 30 } });
    const key = newKey();
    const first = await call('POST', '/enqueue', keyed(key, { json: { id: 'taken', queue, timeout: 30 } }));
    expect(first.status).to.equal(409);
    const again = await call('POST', '/enqueue', keyed(key, { json: { id: 'taken', queue, timeout: 30 } }));
    expect(again.status).to.equal(409);
    expect(again.headers.get('idempotent-replayed')).to.equal('true');
    expect(again.headers.get('content-type')).to.match(/^application\/problem\+json/);
    expect(again.body.type).to.equal(first.body.type);
  });

  it('a resent batch after half its jobs completed stores none of them again', async () => {
    const queue = uniqueQueue();
    const key = newKey();
    const jobs = Array.from({ length: 10 }, (_, i) => ({ id: String(i), queue, timeout: 30 }));
    expect((await call('POST', '/enqueue/batch', keyed(key, { json: jobs }))).status).to.equal(202);
    const leased = await drain(queue);
    for (const job of leased.slice(0, 5)) await call('DELETE', '/v1/complete', { query: { queue, job_id: job.id, run_id: job.run_id } });
    const again = await call('POST', '/enqueue/batch', keyed(key, { json: jobs }));
    expect(again.status).to.equal(202);
    expect(again.headers.get('idempotent-replayed')).to.equal('true');
    // The five left are in flight; none of the five completed came back.
    await call('POST', '/v1/complete/batch', { json: leased.slice(5).map((j: any) => ({ queue, job_id: j.id })) });
    expect(await drain(queue)).to.deep.equal([]);
  });

  it('resent and new keyed enqueues arriving together: the new are stored, the resent replayed, none twice', async () => {
    const queue = uniqueQueue();
    const old = Array.from({ length: 20 }, (_, i) => ({ key: newKey(), job: { id: `old-${i}`, queue, timeout: 30 } }));
    for (const { key, job } of old) expect((await call('POST', '/enqueue', keyed(key, { json: job }))).status).to.equal(202);
    // Half the old jobs finish, so a resend that ran again would store them anew.
    const leased = await drain(queue);
    for (const j of leased.slice(0, 10)) await call('DELETE', '/v1/complete', { query: { queue, job_id: j.id, run_id: j.run_id } });
    const fresh = Array.from({ length: 20 }, (_, i) => ({ key: newKey(), job: { id: `new-${i}`, queue, timeout: 30 } }));
    // Interleaved and concurrent, so that they share the server's statements.
    const mixed = old.flatMap((o, i) => [o, fresh[i]!]);
    const answers = await Promise.all(mixed.map(({ key, job }) => call('POST', '/enqueue', keyed(key, { json: job }))));
    answers.forEach((a, i) => {
      expect(a.status, a.text).to.equal(202);
      expect(a.headers.get('idempotent-replayed'), mixed[i]!.job.id).to.equal(mixed[i]!.job.id.startsWith('old') ? 'true' : null);
    });
    const ids = (await drain(queue)).map((j: any) => j.id).sort();
    expect(ids, 'the new jobs only: the in-flight old ones are not leased again, the completed ones not stored again').to.deep.equal(
      fresh.map((f) => f.job.id).sort(),
    );
  });

  it('keyed requests for one job at once: each key remembers its own answer, one wins', async () => {
    const queue = uniqueQueue();
    // Different keys, one (queue, id): one 202 and the rest 409, and a resend of each key gets
    // what that key got, whichever statement it shared.
    const enqueues = Array.from({ length: 12 }, () => ({ key: newKey(), job: { id: 'one', queue, timeout: 30 } }));
    const first = await Promise.all(enqueues.map(({ key, job }) => call('POST', '/enqueue', keyed(key, { json: job }))));
    expect(first.map((a) => a.status).filter((s) => s === 202), first.map((a) => a.status).join()).to.have.length(1);
    for (const a of first) expect([202, 409], a.text).to.include(a.status);
    const again = await Promise.all(enqueues.map(({ key, job }) => call('POST', '/enqueue', keyed(key, { json: job }))));
    again.forEach((a, i) => {
      expect(a.status, `key ${i}`).to.equal(first[i]!.status);
      expect(a.headers.get('idempotent-replayed')).to.equal('true');
    });
    const [job] = await drain(queue);
    expect(job.id).to.equal('one');

    // Completes of that job under different keys: one 200, the rest 404, each remembered.
    const completes = Array.from({ length: 12 }, () => ({ key: newKey(), query: { queue, job_id: 'one', run_id: job.run_id } }));
    const done = await Promise.all(completes.map(({ key, query }) => call('DELETE', '/v1/complete', keyed(key, { query }))));
    expect(done.map((a) => a.status).filter((s) => s === 200), done.map((a) => a.status).join()).to.have.length(1);
    for (const a of done) expect([200, 404], a.text).to.include(a.status);
    // The job is enqueued anew (no key) so that a complete that ran again would find it.
    expect((await call('POST', '/enqueue', { json: { id: 'one', queue, timeout: 30 } })).status).to.equal(202);
    const replayed = await Promise.all(completes.map(({ key, query }) => call('DELETE', '/v1/complete', keyed(key, { query }))));
    replayed.forEach((a, i) => {
      expect(a.status, `key ${i}`).to.equal(done[i]!.status);
      expect(a.headers.get('idempotent-replayed')).to.equal('true');
    });
    expect((await drain(queue)).map((j: any) => j.id), 'the new job is still there').to.deep.equal(['one']);
  });

  it('the same key with another request is a 422 and changes nothing', async () => {
    const queue = uniqueQueue();
    const key = newKey();
    expect((await call('POST', '/enqueue', keyed(key, { json: { id: 'a', queue, timeout: 30 } }))).status).to.equal(202);
    const other = await call('POST', '/enqueue', keyed(key, { json: { id: 'b', queue, timeout: 30 } }));
    expect(other.status).to.equal(422);
    expect(other.body.type).to.equal('urn:relay-ts:problem:idempotency-key-reused');
    expect((await drain(queue)).map((j: any) => j.id)).to.deep.equal(['a']);
  });

  it('concurrent requests with one key have one effect; the others get 409 or the replayed answer', async () => {
    const queue = uniqueQueue();
    const key = newKey();
    const results = await Promise.all(Array.from({ length: 10 }, () => call('POST', '/enqueue', keyed(key, { json: { id: 'x', queue, timeout: 30 } }))));
    const statuses = results.map((r) => r.status);
    for (const r of results) expect([202, 409], r.text).to.include(r.status);
    const fresh = results.filter((r) => r.status === 202 && r.headers.get('idempotent-replayed') === null);
    expect(fresh, `statuses ${statuses}`).to.have.length(1);
    for (const r of results.filter((r) => r.status === 409)) expect(r.body.type).to.equal('urn:relay-ts:problem:idempotency-key-in-use');
    expect(await drain(queue)).to.have.length(1);
  });

  it('a resent complete after the job was deleted gets its 200 again, on the alias too', async () => {
    const queue = uniqueQueue();
    await call('POST', '/enqueue', { json: { id: 'c', queue, timeout: 30 } });
    const [job] = await drain(queue);
    const key = newKey();
    const query = { queue, job_id: 'c', run_id: job.run_id };
    expect((await call('DELETE', '/v1/complete', keyed(key, { query }))).status).to.equal(200);
    const again = await call('DELETE', '/complete', keyed(key, { query }));
    expect(again.status).to.equal(200);
    expect(again.headers.get('idempotent-replayed')).to.equal('true');
    expect((await call('DELETE', '/v1/complete', { query })).status, 'without the key: the job is gone').to.equal(404);
  });

  it('fail, reschedule and a completion batch replay their answers', async () => {
    const queue = uniqueQueue();
    await call('POST', '/enqueue/batch', { json: ['f', 'r', 'b'].map((id) => ({ id, queue, timeout: 30, max_retries: 3 })) });
    const jobs = Object.fromEntries((await drain(queue)).map((j: any) => [j.id, j]));

    const failKey = newKey();
    const failQuery = { queue, job_id: 'f', run_id: jobs.f.run_id };
    const failed = await call('POST', '/v1/fail', keyed(failKey, { query: failQuery, json: { error: 'x', retry_in: 60 } }));
    expect(failed.status).to.equal(202);
    const failedAgain = await call('POST', '/v1/fail', keyed(failKey, { query: failQuery, json: { error: 'x', retry_in: 60 } }));
    expect(failedAgain.status).to.equal(202);
    expect(failedAgain.body).to.deep.equal(failed.body);

    const reKey = newKey();
    const re = { id: 'r', queue, timeout: 30, run_id: jobs.r.run_id, run_at: '2099-01-01T00:00:00Z' };
    expect((await call('POST', '/reschedule', keyed(reKey, { json: re }))).status).to.equal(202);
    const reAgain = await call('POST', '/reschedule', keyed(reKey, { json: re }));
    expect(reAgain.status, 'not 404: the first released it').to.equal(202);
    expect(reAgain.headers.get('idempotent-replayed')).to.equal('true');

    const batchKey = newKey();
    const refs = [{ queue, job_id: 'b', run_id: jobs.b.run_id }, { queue, job_id: 'ghost' }];
    const done = await call('POST', '/v1/complete/batch', keyed(batchKey, { json: refs }));
    const doneAgain = await call('POST', '/v1/complete/batch', keyed(batchKey, { json: refs }));
    expect(doneAgain.status).to.equal(200);
    expect(doneAgain.body).to.deep.equal(done.body);
    expect(doneAgain.body.completed).to.have.length(1);
  });

  it('refuses a key that is empty, too long or not printable, with a 400 naming the header', async () => {
    for (const key of ['x'.repeat(256), 'tab\there']) {
      const res = await call('POST', '/enqueue', keyed(key, { json: { id: 'a', queue: uniqueQueue(), timeout: 30 } }));
      expect(res.status, JSON.stringify(key)).to.equal(400);
      expect(res.body.errors[0].path).to.match(/idempotency-key/i);
    }
  });

  describe('with tokens', () => {
    let server: RelayServer;
    const alice = 'producer-alice-0001';
    const bob = 'producer-bob-0002';
    before(async () => {
      server = await startRelay({ authTokens: [{ role: 'producer', token: alice }, { role: 'producer', token: bob }, { role: 'admin', token: 'admin-0003' }] });
    });
    after(async () => {
      await server?.close();
    });
    const as = (token: string, key: string, json: unknown): CallOptions => ({ baseUrl: server.url, json, headers: { authorization: `Bearer ${token}`, 'idempotency-key': key } });

    it("keys are the caller's own: another token's same key is a new request, not a replay or a 422", async () => {
      const queue = uniqueQueue();
      const key = newKey();
      const first = await call('POST', '/enqueue', as(alice, key, { id: 'a', queue, timeout: 30 }));
      expect(first.status).to.equal(202);
      const other = await call('POST', '/enqueue', as(bob, key, { id: 'b', queue, timeout: 30 }));
      expect(other.status, other.text).to.equal(202);
      expect(other.headers.get('idempotent-replayed')).to.equal(null);
      const again = await call('POST', '/enqueue', as(alice, key, { id: 'a', queue, timeout: 30 }));
      expect(again.headers.get('idempotent-replayed')).to.equal('true');
      const reused = await call('POST', '/enqueue', as(alice, key, { id: 'c', queue, timeout: 30 }));
      expect(reused.status, 'the same token, another request').to.equal(422);
      const jobs = await call('GET', '/v1/next', { baseUrl: server.url, query: { queue, num_jobs: 10 }, headers: { authorization: 'Bearer admin-0003' } });
      expect(jobs.body.map((j: { id: string }) => j.id)).to.deep.equal(['a', 'b']);
    });
  });

  describe('with a short window', () => {
    let server: RelayServer;
    before(async () => {
      server = await startRelay({ idempotencyWindowSeconds: 1 });
    });
    after(async () => {
      await server?.close();
    });

    it('after the window the same request is new', async () => {
      const queue = uniqueQueue();
      const key = newKey();
      const job = { id: 'w', queue, timeout: 30 };
      const at = (o: CallOptions) => ({ ...o, baseUrl: server.url });
      expect((await call('POST', '/enqueue', at(keyed(key, { json: job })))).status).to.equal(202);
      const leased = await call('GET', '/v1/next', at({ query: { queue } }));
      await call('DELETE', '/v1/complete', at({ query: { queue, job_id: 'w', run_id: leased.body[0].run_id } }));
      await sleep(1_200);
      const again = await call('POST', '/enqueue', at(keyed(key, { json: job })));
      expect(again.status).to.equal(202);
      expect(again.headers.get('idempotent-replayed')).to.equal(null);
      expect((await call('GET', '/v1/next', at({ query: { queue } }))).status, 'a second job').to.equal(200);
      // And once expired, the key may even carry another request.
      await sleep(1_200);
      expect((await call('POST', '/enqueue', at(keyed(key, { json: { ...job, id: 'other' } })))).status).to.equal(202);
    });
  });

  it('with --idempotency-window 0 the header is ignored', async () => {
    const off = await startRelay({ idempotencyWindowSeconds: 0 });
    try {
      const queue = uniqueQueue();
      const key = newKey();
      const at = (o: CallOptions) => ({ ...o, baseUrl: off.url });
      expect((await call('POST', '/enqueue', at(keyed(key, { json: { id: 'a', queue, timeout: 30 } })))).status).to.equal(202);
      expect((await call('POST', '/enqueue', at(keyed(key, { json: { id: 'b', queue, timeout: 30 } })))).status).to.equal(202);
    } finally {
      await off.close();
    }
  });
});

describe('the served contract', () => {
  it('GET /openapi.yaml and /openapi.json are the document the server validates against', async () => {
    const text = await call('GET', '/openapi.yaml');
    expect(text.status).to.equal(200);
    expect(text.headers.get('content-type')).to.match(/yaml/);
    const doc = yaml.load(text.text) as { paths: Record<string, unknown> };
    expect(doc.paths).to.have.property('/enqueue');
    const json = await call('GET', '/openapi.json');
    expect(json.body).to.deep.equal(doc);
  });
});

