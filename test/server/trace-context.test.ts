import { expect } from 'chai';
import { call, drain, enqueue, eventually, next, relay, uniqueQueue } from '../helpers/relay.js';

/*
 * The trace context of the request that enqueued a job (its W3C traceparent header) is kept
 * with the job and handed out by next, so that any producer that sends the header links its
 * trace to the worker's; an invalid header is ignored, never refused.
 */

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${SPAN_ID}-01`;

describe('trace context', () => {
  it('next hands out the traceparent of the enqueue, single or batch', async () => {
    const queue = uniqueQueue('trace');
    const single = await call('POST', '/enqueue', { json: { id: 'one', queue, timeout: 30 }, headers: { traceparent: TRACEPARENT } });
    expect(single.status).to.equal(202);
    const other = `00-${'a'.repeat(32)}-${'b'.repeat(16)}-00`;
    const batch = await call('POST', '/enqueue/batch', { json: [{ id: 'two', queue, timeout: 30 }, { id: 'three', queue, timeout: 30 }], headers: { traceparent: other } });
    expect(batch.status).to.equal(202);
    await enqueue({ id: 'untraced', queue, timeout: 30 });
    const jobs = await drain(queue);
    expect(jobs.map((j) => [j.id, j.traceparent])).to.deep.equal([
      ['one', TRACEPARENT],
      ['two', other],
      ['three', other],
      ['untraced', undefined],
    ]);
  });

  it('a job handed to a waiting poll carries it too', async () => {
    const queue = uniqueQueue('trace');
    const poll = call('GET', '/v1/next', { query: { queue, wait: 10 } });
    await eventually(async () => relay().waitingPolls > 0);
    await call('POST', '/enqueue', { json: { id: 'x', queue, timeout: 30 }, headers: { traceparent: TRACEPARENT } });
    const answer = await poll;
    expect(answer.body[0].traceparent).to.equal(TRACEPARENT);
  });

  it('keeps it through a failure and a replay; a later version is read as version 00', async () => {
    const queue = uniqueQueue('trace');
    await call('POST', '/enqueue', { json: { id: 'x', queue, timeout: 30 }, headers: { traceparent: `01-${TRACE_ID}-${SPAN_ID}-01-future` } });
    const [job] = (await next(queue, 1)).body;
    expect(job.traceparent).to.equal(TRACEPARENT);
    await call('POST', '/v1/fail', { query: { queue, job_id: 'x', run_id: job.run_id }, json: { error: 'no' } });
    expect((await call('POST', `/v1/queues/${queue}/jobs/x/retry`)).status).to.equal(200);
    expect((await next(queue, 1)).body[0].traceparent).to.equal(TRACEPARENT);
  });

  it('ignores an invalid traceparent rather than refusing the request', async () => {
    const queue = uniqueQueue('trace');
    const invalid = [
      'garbage',
      `00-${'0'.repeat(32)}-${SPAN_ID}-01`,
      `00-${TRACE_ID}-${'0'.repeat(16)}-01`,
      `ff-${TRACE_ID}-${SPAN_ID}-01`,
      `00-${TRACE_ID}-${SPAN_ID}-01-extra`,
      `00-${TRACE_ID.toUpperCase()}-${SPAN_ID}-01`,
    ];
    for (const [i, traceparent] of invalid.entries()) {
      const res = await call('POST', '/enqueue', { json: { id: `j${i}`, queue, timeout: 30 }, headers: { traceparent } });
      expect(res.status, traceparent).to.equal(202);
    }
    const jobs = await drain(queue);
    expect(jobs).to.have.length(invalid.length);
    for (const job of jobs) expect(job).to.not.have.property('traceparent');
  });
});
