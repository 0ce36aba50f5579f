import { expect } from 'chai';
import { call, complete, drain, enqueue, heartbeat, next, uniqueQueue } from '../helpers/relay.js';

describe('ids and queue names', () => {
  const awkward = ['with space', 'a/b/c', 'what?x=1', 'a&b=c', '100%', '%2F', 'plus+sign', '#hash', 'Ünïcödé', 'очередь', '队列', 'emoji 🚀', "quote'\"", 'back\\slash'];

  for (const name of awkward) {
    it(`round-trips ${JSON.stringify(name)} as id and queue through every endpoint`, async () => {
      const queue = `${uniqueQueue()} ${name}`;
      const id = `${name}-id`;
      expect((await enqueue({ id, queue, timeout: 30, max_retries: -1 })).status).to.equal(202);
      const [job] = await drain(queue);
      expect(job).to.include({ id, queue });
      expect((await heartbeat(queue, id, { state: { name } })).status).to.equal(202);
      const rescheduled = await call('POST', '/reschedule', { json: { id, queue, timeout: 30, state: name } });
      expect(rescheduled.status).to.equal(202);
      const [again] = await drain(queue);
      expect(again).to.include({ id, queue, state: name });
      expect((await complete(queue, id)).status).to.equal(200);
      expect((await next(queue)).status).to.equal(204);
    });
  }

  it('counts characters, not bytes: a 1024-character non-Latin id is valid', async () => {
    const queue = uniqueQueue();
    const id = 'ж'.repeat(1024); // 2048 bytes in UTF-8
    expect((await enqueue({ id, queue, timeout: 5 })).status).to.equal(202);
    expect((await drain(queue))[0].id).to.equal(id);
    expect((await enqueue({ id: 'ж'.repeat(1025), queue, timeout: 5 })).status).to.equal(400);
  });

  it('refuses, in its own terms, a queue and id too large together for the key (non-Latin text)', async () => {
    const queue = uniqueQueue();
    // 1 024 CJK characters: within the character limit, 3 072 bytes of UTF-8.
    const res = await enqueue({ id: '漢'.repeat(1024), queue, timeout: 5 });
    expect(res.status).to.equal(400);
    expect(res.body.errors[0].path).to.equal('/body/id');
    expect(res.body.detail).to.match(/at most 2600/);
    expect(res.text).not.to.match(/relay_|pkey|btree|index row/i);
    const batch = await call('POST', '/enqueue/batch', { json: [{ id: 'ok', queue, timeout: 5 }, { id: '漢'.repeat(1024), queue, timeout: 5 }] });
    expect(batch.status).to.equal(400);
    expect(batch.body.errors[0].path).to.equal('/body/1/id');
    expect(await drain(queue)).to.deep.equal([]);
  });

  it('treats ids as exact strings: case and Unicode form matter', async () => {
    const queue = uniqueQueue();
    for (const id of ['job', 'JOB', 'caf\u00e9', 'cafe\u0301']) expect((await enqueue({ id, queue, timeout: 5 })).status).to.equal(202);
    expect(await drain(queue)).to.have.length(4);
  });
});

describe('compatibility aliases', () => {
  it('serves /next, /heartbeat and /complete like their /v1 paths', async () => {
    const queue = uniqueQueue();
    await enqueue({ id: 'a', queue, timeout: 30, max_retries: -1 });
    const leased = await call('GET', '/next', { query: { queue, num_jobs: 5 } });
    expect(leased.status).to.equal(200);
    expect(leased.body.map((j: { id: string }) => j.id)).to.deep.equal(['a']);
    expect((await call('GET', '/next', { query: { queue } })).status).to.equal(204);
    expect((await call('GET', '/next', { query: { queue, num_jobs: 0 } })).status).to.equal(204);
    expect((await call('PATCH', '/heartbeat', { query: { queue, job_id: 'a' }, json: { at: 1 } })).status).to.equal(202);
    expect((await call('PATCH', '/heartbeat', { query: { queue, job_id: 'zz' } })).status).to.equal(404);
    await call('POST', '/v1/fail', { query: { queue, job_id: 'a' }, json: { retry_in: 0 } });
    expect((await drain(queue))[0].state).to.deep.equal({ at: 1 });
    expect((await call('DELETE', '/complete', { query: { queue, job_id: 'a' } })).status).to.equal(200);
    expect((await call('DELETE', '/complete', { query: { queue, job_id: 'a' } })).status).to.equal(404);
  });
});

describe('GET /health', () => {
  it('answers 200 with the database kind', async () => {
    const res = await call('GET', '/health');
    expect(res.status).to.equal(200);
    expect(res.body.status).to.equal('ok');
    expect(res.body.database).to.equal(process.env.DATABASE_URL ? 'postgres' : 'pglite');
  });
});
