import { expect } from 'chai';
import { call, complete, drain, enqueue, sleep, uniqueQueue } from '../helpers/relay.js';

// Concurrent single enqueues and completes share statements on the server; each request must
// still get exactly the answer it would have got alone.
describe('concurrent single requests', () => {
  it('enqueues of one (queue, id) at once: exactly one 202, the rest 409, one job stored', async () => {
    const queue = uniqueQueue();
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => enqueue({ id: 'same', queue, timeout: 30, payload: i })));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 202)).to.have.length(1);
    expect(statuses.filter((s) => s === 409)).to.have.length(19);
    const jobs = await drain(queue);
    expect(jobs).to.have.length(1);
    expect(jobs[0].payload).to.equal(statuses.indexOf(202));
  });

  it('a refused value fails only the request that sent it', async () => {
    const queue = uniqueQueue();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => enqueue({ id: String(i), queue, timeout: 30, payload: i === 7 ? 'bad\u0000' : i })),
    );
    results.forEach((r, i) => expect(r.status, `request ${i}`).to.equal(i === 7 ? 400 : 202));
    const ids = (await drain(queue)).map((j) => j.id).sort();
    expect(ids).to.deep.equal(Array.from({ length: 20 }, (_, i) => String(i)).filter((id) => id !== '7').sort());
  });

  it('a refused value among enqueues for a waiting long poll: the waiter still gets one good job, none is lost', async () => {
    const queue = uniqueQueue();
    const waiting = call('GET', '/v1/next', { query: { queue, wait: 10 } });
    await sleep(200);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => enqueue({ id: String(i), queue, timeout: 30, payload: i === 7 ? 'bad\u0000' : i })),
    );
    results.forEach((r, i) => expect(r.status, `request ${i}`).to.equal(i === 7 ? 400 : 202));
    const handed = await waiting;
    expect(handed.status).to.equal(200);
    expect(handed.body).to.have.length(1);
    expect(handed.body[0].attempt).to.equal(1);
    const rest = (await drain(queue)).map((j) => j.id);
    expect([handed.body[0].id, ...rest].sort()).to.deep.equal(Array.from({ length: 20 }, (_, i) => String(i)).filter((id) => id !== '7').sort());
  });

  it('a NUL in a job_id among 300 concurrent completes fails only itself', async () => {
    const queue = uniqueQueue();
    await call('POST', '/enqueue/batch', { json: Array.from({ length: 300 }, (_, i) => ({ id: String(i), queue, timeout: 30 })) });
    const jobs = await drain(queue);
    const results = await Promise.all([
      call('DELETE', '/v1/complete', { query: { queue, job_id: '\u0000' } }),
      ...jobs.map((j) => complete(queue, j.id, j.run_id)),
    ]);
    expect(results[0]!.status).to.equal(400);
    expect(results.slice(1).map((r) => r.status)).to.deep.equal(jobs.map(() => 200));
  });

  it('a payload nested too deep among concurrent enqueues fails only itself', async () => {
    const queue = uniqueQueue();
    // Written out by hand: JSON.stringify itself overflows the stack on it.
    const deep = `{"id":"7","queue":${JSON.stringify(queue)},"timeout":30,"payload":${'['.repeat(6000)}1${']'.repeat(6000)}}`;
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        i === 7
          ? call('POST', '/enqueue', { raw: deep, headers: { 'content-type': 'application/json' } })
          : enqueue({ id: String(i), queue, timeout: 30, payload: i }),
      ),
    );
    results.forEach((r, i) => expect(r.status, `request ${i}`).to.equal(i === 7 ? 400 : 202));
    expect(results[7]!.body.detail).to.match(/nested more than 128 levels/);
    expect(await drain(queue)).to.have.length(49);
  });

  it('completes of one job at once: exactly one 200, the rest 404', async () => {
    const queue = uniqueQueue();
    await enqueue({ id: 'a', queue, timeout: 30 });
    const [job] = await drain(queue);
    const results = await Promise.all([
      complete(queue, 'a', 'stale-run'),
      ...Array.from({ length: 9 }, () => complete(queue, 'a', job.run_id)),
    ]);
    expect(results[0]!.status).to.equal(404);
    expect(results.filter((r) => r.status === 200)).to.have.length(1);
    expect(results.filter((r) => r.status === 404)).to.have.length(9);
  });

  it('many different jobs enqueued and completed at once all succeed', async () => {
    const queue = uniqueQueue();
    const ids = Array.from({ length: 200 }, (_, i) => `job-${i}`);
    const enq = await Promise.all(ids.map((id) => enqueue({ id, queue, timeout: 30 })));
    expect(enq.every((r) => r.status === 202)).to.equal(true);
    const jobs = await drain(queue);
    expect(jobs.map((j) => j.id).sort()).to.deep.equal([...ids].sort());
    const done = await Promise.all(jobs.map((j) => complete(queue, j.id, j.run_id)));
    expect(done.every((r) => r.status === 200)).to.equal(true);
    expect(await drain(queue)).to.be.empty;
  });
});
