import { expect } from 'chai';
import type { RelayServer } from '../../server/src/index.js';
import { scrape, valueOf, type Sample } from '../helpers/metrics.js';
import { call, enqueue, enqueueBatch, eventually, next, relay, sleep, startRelay, uniqueQueue } from '../helpers/relay.js';

/*
 * /metrics with two servers on one PostgreSQL: each server counts the requests it answered
 * (a job leased on one and completed on the other is delivered by the first and completed by
 * the second, with its processing time), both report the same queue gauges, the database's,
 * and a lease expiry is counted once, by the server whose reaper found it.
 */

describe('metrics across servers on one PostgreSQL', function () {
  this.timeout(30_000);
  let a: RelayServer;
  let b: RelayServer;
  before(async () => {
    [a, b] = await Promise.all([
      startRelay({ metricsRefreshSeconds: 0.1, reapInterval: 0.05 }),
      startRelay({ metricsRefreshSeconds: 0.1, reapInterval: 0.05 }),
    ]);
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  it('each server counts its own requests; both report the database gauges', async () => {
    const queue = uniqueQueue('metrics2');
    for (const id of ['j1', 'j2', 'j3']) expect((await enqueue({ id, queue, timeout: 30 }, a.url)).status).to.equal(202);
    expect((await enqueueBatch([{ id: 'j4', queue, timeout: 30 }, { id: 'j5', queue, timeout: 30 }], b.url)).status).to.equal(202);
    const onA: any[] = (await next(queue, 2, a.url)).body;
    const onB: any[] = (await next(queue, 2, b.url)).body;
    expect(onA.map((j) => j.id)).to.deep.equal(['j1', 'j2']);
    expect(onB.map((j) => j.id)).to.deep.equal(['j3', 'j4']);
    await sleep(50);
    // j1, leased on a, is completed through b; j3, leased on b, through a.
    expect((await call('DELETE', '/v1/complete', { query: { queue, job_id: 'j1', run_id: onA[0].run_id }, baseUrl: b.url })).status).to.equal(200);
    expect((await call('DELETE', '/v1/complete', { query: { queue, job_id: 'j3', run_id: onB[0].run_id }, baseUrl: a.url })).status).to.equal(200);
    expect((await call('POST', '/v1/fail', { query: { queue, job_id: 'j2', run_id: onA[1].run_id }, json: { error: 'no' }, baseUrl: a.url })).body.outcome).to.equal('failed');
    expect((await call('DELETE', `/v1/queues/${queue}/jobs/j5`, { baseUrl: b.url })).status).to.equal(204);

    const expected = {
      a: { enqueued: 3, delivered: 2, completed: 1, failed: 1, cancelled: undefined, processed: 1 },
      b: { enqueued: 2, delivered: 2, completed: 1, failed: undefined, cancelled: 1, processed: 1 },
    };
    const [sa, sb] = await Promise.all([scrape(a.url), scrape(b.url)]);
    const counters = (s: Sample[]) => ({
      enqueued: valueOf(s, 'relay_jobs_enqueued_total', { queue }),
      delivered: valueOf(s, 'relay_jobs_delivered_total', { queue }),
      completed: valueOf(s, 'relay_jobs_completed_total', { queue }),
      failed: valueOf(s, 'relay_jobs_failed_total', { queue, cause: 'fail' }),
      cancelled: valueOf(s, 'relay_jobs_cancelled_total', { queue }),
      processed: valueOf(s, 'relay_job_processing_seconds_count', { queue }),
    });
    expect({ a: counters(sa), b: counters(sb) }).to.deep.equal(expected);
    // Processing time comes from the database: j1 was delivered by a and completed on b.
    expect(valueOf(sb, 'relay_job_processing_seconds_sum', { queue })).to.be.within(0.04, 10);

    const summary = (await call('GET', `/v1/queues/${queue}`, { baseUrl: a.url })).body;
    expect(summary).to.include({ waiting: 0, scheduled: 0, in_flight: 1, failed: 1 });
    const gauges = (s: Sample[]) => Object.fromEntries(['waiting', 'scheduled', 'in_flight', 'failed'].map((status) => [status, valueOf(s, 'relay_queue_jobs', { queue, status })]));
    await eventually(async () => {
      const [ga, gb] = await Promise.all([scrape(a.url), scrape(b.url)]);
      const want = JSON.stringify({ waiting: 0, scheduled: 0, in_flight: 1, failed: 1 });
      return JSON.stringify(gauges(ga)) === want && JSON.stringify(gauges(gb)) === want;
    });
  });

  it('a lease expiry is counted once across the servers', async () => {
    const queue = uniqueQueue('expiry');
    await enqueue({ id: 'x', queue, timeout: 1, max_retries: 1 }, a.url);
    expect((await next(queue, 1, b.url)).status).to.equal(200);
    const servers = [a, b, relay()];
    const total = async () => {
      const all = await Promise.all(servers.map((s) => scrape(s.url)));
      return all.reduce((n, s) => n + (valueOf(s, 'relay_jobs_retried_total', { queue, cause: 'lease_expired' }) ?? 0), 0);
    };
    await eventually(async () => (await total()) > 0, 10_000);
    await sleep(500);
    expect(await total()).to.equal(1);
    expect((await call('GET', `/v1/queues/${queue}`, { baseUrl: a.url })).body).to.include({ waiting: 1, in_flight: 0 });
  });
});
