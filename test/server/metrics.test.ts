import { expect } from 'chai';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { defaults, parseConfig, startServer, type RelayServer } from '../../server/src/index.js';
import { parseMetrics, scrape, valueOf, type Sample } from '../helpers/metrics.js';
import { call, enqueue, enqueueBatch, eventually, next, relay, startRelay, uniqueQueue } from '../helpers/relay.js';

/*
 * GET /metrics (issue 13): after a scripted workload the job counters are exactly the
 * workload, the queue gauges are the database's counts, the histograms count each delivery
 * and completion; label values are capped; /metrics can have a port of its own and can be
 * turned off. And the request log: one line per request with its request id, never a secret.
 */

const jobPath = (queue: string, id: string) => `/v1/queues/${encodeURIComponent(queue)}/jobs/${encodeURIComponent(id)}`;
const future = () => new Date(Date.now() + 3600_000).toISOString();

describe('metrics', function () {
  this.timeout(30_000);

  describe('after a scripted workload', () => {
    let server: RelayServer;
    const queue = uniqueQueue('metrics');
    let samples: Sample[];
    let expiredOnce: number;
    const at = (url: string) => ({ baseUrl: url });
    /**
     * Expiries are counted by the server whose reaper found them: on PostgreSQL the suite's
     * shared server reaps the same database, so the two servers' counts are added.
     */
    const expiries = async (url: string) => {
      const [own, shared] = await Promise.all([scrape(url), scrape(relay().url)]);
      const count = (s: Sample[]) => valueOf(s, 'relay_jobs_retried_total', { queue, cause: 'lease_expired' }) ?? 0;
      return count(own) + count(shared);
    };

    before(async () => {
      server = await startRelay({ reapInterval: 0.05, metricsRefreshSeconds: 0.1 });
      const url = server.url;
      // 7 jobs stored: 4 single enqueues, and a batch of 4 of which one repeats a stored id.
      expect((await enqueue({ id: 'done', queue, timeout: 30 }, url)).status).to.equal(202);
      expect((await enqueue({ id: 'retry-by-fail', queue, timeout: 30, max_retries: 2 }, url)).status).to.equal(202);
      expect((await enqueue({ id: 'expires', queue, timeout: 1, max_retries: 1 }, url)).status).to.equal(202);
      expect((await enqueue({ id: 'rescheduled', queue, timeout: 30 }, url)).status).to.equal(202);
      expect((await enqueue({ id: 'done', queue, timeout: 30 }, url)).status).to.equal(409);
      const batch = ['fails', 'cancelled', 'waits', 'done'].map((id) => ({ id, queue, timeout: 30 }));
      expect((await enqueueBatch(batch, url)).status).to.equal(202);

      // 5 delivered at once, in enqueue order.
      const leased: any[] = (await next(queue, 5, url)).body;
      expect(leased.map((j) => j.id)).to.deep.equal(['done', 'retry-by-fail', 'expires', 'rescheduled', 'fails']);
      const runId = (id: string) => leased.find((j) => j.id === id).run_id;

      expect((await call('DELETE', '/v1/complete', { query: { queue, job_id: 'done', run_id: runId('done') }, ...at(url) })).status).to.equal(200);
      const retrying = await call('POST', '/v1/fail', { query: { queue, job_id: 'retry-by-fail', run_id: runId('retry-by-fail') }, json: { error: 'later', retry_in: 3600 }, ...at(url) });
      expect(retrying.body.outcome).to.equal('retrying');
      const failed = await call('POST', '/v1/fail', { query: { queue, job_id: 'fails', run_id: runId('fails') }, json: { error: 'broken' }, ...at(url) });
      expect(failed.body.outcome).to.equal('failed');
      const rescheduled = await call('POST', '/reschedule', { json: { id: 'rescheduled', queue, timeout: 30, run_at: future(), run_id: runId('rescheduled') }, ...at(url) });
      expect(rescheduled.status).to.equal(202);
      expect((await call('DELETE', jobPath(queue, 'cancelled'), at(url))).status).to.equal(204);
      // Not counted: nothing was there to cancel, complete or fail.
      expect((await call('DELETE', jobPath(queue, 'nothing'), at(url))).status).to.equal(404);
      expect((await call('DELETE', '/v1/complete', { query: { queue, job_id: 'nothing' }, ...at(url) })).status).to.equal(404);

      // The 1 s lease of "expires" runs out; the reaper puts it back with a retry counted.
      await eventually(async () => (await expiries(url)) === 1, 10_000);
      // Delivered again (its run_at is the oldest) and completed: 6 deliveries, 2 completions.
      const [again] = (await next(queue, 1, url)).body;
      expect(again).to.include({ id: 'expires', attempt: 2 });
      expect((await call('DELETE', '/v1/complete', { query: { queue, job_id: 'expires', run_id: again.run_id }, ...at(url) })).status).to.equal(200);
      samples = await scrape(url);
      expiredOnce = await expiries(url);
    });

    after(async () => {
      await server?.close();
    });

    it('counts every outcome of the queue exactly', () => {
      const v = (name: string, labels: Record<string, string> = {}) => valueOf(samples, name, { queue, ...labels });
      expect({
        enqueued: v('relay_jobs_enqueued_total'),
        delivered: v('relay_jobs_delivered_total'),
        completed: v('relay_jobs_completed_total'),
        retriedAfterFail: v('relay_jobs_retried_total', { cause: 'fail' }),
        retriedAfterExpiry: expiredOnce,
        failed: v('relay_jobs_failed_total', { cause: 'fail' }),
        failedAfterExpiry: v('relay_jobs_failed_total', { cause: 'lease_expired' }),
        rescheduled: v('relay_jobs_rescheduled_total'),
        cancelled: v('relay_jobs_cancelled_total'),
      }).to.deep.equal({
        enqueued: 7,
        delivered: 6,
        completed: 2,
        retriedAfterFail: 1,
        retriedAfterExpiry: 1,
        failed: 1,
        failedAfterExpiry: undefined,
        rescheduled: 1,
        cancelled: 1,
      });
    });

    it('times each delivery from run_at and each completion from its delivery', () => {
      expect(valueOf(samples, 'relay_job_queue_latency_seconds_count', { queue })).to.equal(6);
      expect(valueOf(samples, 'relay_job_processing_seconds_count', { queue })).to.equal(2);
      expect(valueOf(samples, 'relay_job_queue_latency_seconds_bucket', { queue, le: '+Inf' })).to.equal(6);
      // "expires" was delivered again at least its 1 s lease after its run_at.
      expect(valueOf(samples, 'relay_job_queue_latency_seconds_sum', { queue })).to.be.at.least(1);
      expect(valueOf(samples, 'relay_job_processing_seconds_sum', { queue })).to.be.within(0, 10);
    });

    it('reports the queue gauges as the database counts them', async () => {
      const summary = (await call('GET', `/v1/queues/${encodeURIComponent(queue)}`, at(server.url))).body;
      expect(summary).to.include({ waiting: 1, scheduled: 2, in_flight: 0, failed: 1, paused: false });
      const gauges = await eventually(async () => {
        const s = await scrape(server.url);
        const g = (status: string) => valueOf(s, 'relay_queue_jobs', { queue, status });
        const seen = { waiting: g('waiting'), scheduled: g('scheduled'), in_flight: g('in_flight'), failed: g('failed') };
        return JSON.stringify(seen) === JSON.stringify({ waiting: 1, scheduled: 2, in_flight: 0, failed: 1 }) && s;
      });
      expect(valueOf(gauges, 'relay_queue_paused', { queue })).to.equal(0);
      const oldest = valueOf(gauges, 'relay_queue_oldest_waiting_seconds', { queue })!;
      expect(Math.abs(oldest - summary.oldest_waiting_seconds)).to.be.below(2);
      expect(oldest).to.be.above(0);
    });

    it('follows a pause, and drops a queue that emptied', async () => {
      await call('POST', `/v1/queues/${encodeURIComponent(queue)}/pause`, at(server.url));
      await eventually(async () => valueOf(await scrape(server.url), 'relay_queue_paused', { queue }) === 1);
      await call('POST', `/v1/queues/${encodeURIComponent(queue)}/resume`, at(server.url));
      const emptied = uniqueQueue('emptied');
      await enqueue({ id: 'x', queue: emptied, timeout: 30 }, server.url);
      await eventually(async () => valueOf(await scrape(server.url), 'relay_queue_jobs', { queue: emptied, status: 'waiting' }) === 1);
      await call('DELETE', jobPath(emptied, 'x'), at(server.url));
      await eventually(async () => valueOf(await scrape(server.url), 'relay_queue_jobs', { queue: emptied, status: 'waiting' }) === undefined);
    });

    it('times requests by method, route template and status', async () => {
      await call('GET', jobPath(queue, 'a/b c'), at(server.url));
      const s = await scrape(server.url);
      expect(valueOf(s, 'relay_http_request_duration_seconds_count', { method: 'GET', route: '/v1/queues/{queue}/jobs/{id}', status: '404' })).to.equal(1);
      expect(valueOf(s, 'relay_http_request_duration_seconds_count', { method: 'POST', route: '/enqueue', status: '409' })).to.equal(1);
      expect(valueOf(s, 'relay_http_request_duration_seconds_count', { method: 'GET', route: '/v1/next', status: '200' })).to.equal(2);
      expect(s.some((x) => x.labels.route?.includes('a/b'))).to.equal(false);
    });

    it('reports the reaper, the long polls and the process', async () => {
      const s = await scrape(server.url);
      expect(Date.now() / 1000 - valueOf(s, 'relay_reaper_last_run_timestamp_seconds')!).to.be.within(0, 5);
      expect(valueOf(s, 'relay_reaper_last_run_duration_seconds')).to.be.within(0, 5);
      expect(valueOf(s, 'relay_long_polls_waiting')).to.equal(0);
      expect(valueOf(s, 'process_cpu_seconds_total')).to.be.above(0);
      expect(valueOf(s, 'nodejs_eventloop_lag_seconds')).to.be.a('number');
      if (server.databaseKind === 'postgres') {
        expect(valueOf(s, 'relay_db_pool_connections', { state: 'idle' })).to.be.a('number');
        expect(valueOf(s, 'relay_db_pool_waiting_requests')).to.equal(0);
      }
    });
  });

  it('a long poll waiting shows in relay_long_polls_waiting', async () => {
    const server = await startRelay();
    try {
      const queue = uniqueQueue();
      const poll = call('GET', '/v1/next', { query: { queue, wait: 30 }, baseUrl: server.url });
      await eventually(async () => server.waitingPolls === 1);
      expect(valueOf(await scrape(server.url), 'relay_long_polls_waiting')).to.equal(1);
      await enqueue({ id: 'x', queue, timeout: 30 }, server.url);
      expect((await poll).status).to.equal(200);
      const s = await scrape(server.url);
      // A job handed to the waiting poll is a delivery like any other.
      expect(valueOf(s, 'relay_jobs_delivered_total', { queue })).to.equal(1);
      expect(valueOf(s, 'relay_job_queue_latency_seconds_count', { queue })).to.equal(1);
    } finally {
      await server.close();
    }
  });

  it('gives at most --metrics-max-queues queues a label of their own; the rest are _other', async () => {
    // No reaper run: on a shared PostgreSQL it would count other tests' expired leases under
    // their queues first, and take the labels.
    const server = await startRelay({ metricsMaxQueues: 2, reapInterval: 3600 });
    try {
      const queues = [uniqueQueue('a'), uniqueQueue('b'), uniqueQueue('c'), uniqueQueue('d')];
      for (const queue of queues) await enqueue({ id: 'x', queue, timeout: 30 }, server.url);
      const s = await scrape(server.url);
      expect(valueOf(s, 'relay_jobs_enqueued_total', { queue: queues[0]! })).to.equal(1);
      expect(valueOf(s, 'relay_jobs_enqueued_total', { queue: queues[1]! })).to.equal(1);
      expect(valueOf(s, 'relay_jobs_enqueued_total', { queue: '_other' })).to.equal(2);
      const labelled = new Set(s.filter((x) => x.name.startsWith('relay_') && x.labels.queue).map((x) => x.labels.queue));
      expect([...labelled].sort()).to.deep.equal([...queues.slice(0, 2), '_other'].sort());
    } finally {
      await server.close();
    }
  });

  it('serves /metrics alone on --metrics-port', async () => {
    const server = await startRelay({ metricsPort: 0 });
    try {
      expect(server.metricsUrl).to.match(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      expect(server.metricsUrl).to.not.include(`:${server.port}/`);
      const res = await fetch(server.metricsUrl!);
      expect(res.status).to.equal(200);
      expect(valueOf(parseMetrics(await res.text()), 'relay_long_polls_waiting')).to.equal(0);
      expect((await fetch(new URL('/health', server.metricsUrl))).status).to.equal(404);
      expect((await fetch(server.metricsUrl!, { method: 'POST' })).status).to.equal(404);
      // Still on the API's port too.
      expect((await call('GET', '/metrics', { baseUrl: server.url })).status).to.equal(200);
    } finally {
      await server.close();
    }
  });

  it('--no-metrics and RELAY_METRICS=off turn /metrics off (404)', async () => {
    const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
      const parsed = parseConfig(argv, env);
      if (!('config' in parsed)) throw new Error('help');
      return parsed.config;
    };
    expect(parse([]).metrics).to.equal(true);
    expect(parse(['--no-metrics']).metrics).to.equal(false);
    expect(parse([], { RELAY_METRICS: 'off' }).metrics).to.equal(false);
    expect(parse([], { RELAY_METRICS: 'on' }).metrics).to.equal(true);
    expect(() => parse([], { RELAY_METRICS: 'maybe' })).to.throw(/RELAY_METRICS/);
    expect(parse(['--metrics-port', '9464', '--metrics-refresh-interval', '2.5', '--metrics-max-queues', '50'])).to.include({
      metricsPort: 9464,
      metricsRefreshSeconds: 2.5,
      metricsMaxQueues: 50,
    });
    expect(parse([], { RELAY_BENCH_DISABLE: 'metrics' }).disabled.has('metrics')).to.equal(true);

    const server = await startRelay({ metrics: false });
    try {
      const res = await call('GET', '/metrics', { baseUrl: server.url });
      expect(res.status).to.equal(404);
      expect(res.headers.get('content-type')).to.match(/^application\/problem\+json/);
    } finally {
      await server.close();
    }
  });
});

describe('request log', function () {
  this.timeout(30_000);
  let server: RelayServer;
  const lines: any[] = [];

  before(async () => {
    const sink = new Writable({
      write(chunk, _encoding, callback) {
        for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
        callback();
      },
    });
    const config = {
      ...defaults,
      port: 0,
      reapInterval: 0.1,
      databaseUrl: process.env.DATABASE_URL || undefined,
      dataDir: 'memory://',
      logLevel: 'info',
      validateResponses: true,
    };
    server = await startServer(config, pino({ level: 'info', base: undefined }, sink));
  });
  after(async () => {
    await server?.close();
  });

  const linesOf = (requestId: string) => lines.filter((l) => l.msg === 'request' && l.requestId === requestId);

  it('logs one line per request: method, route template, status, duration, queue, job id and request id, echoed back', async () => {
    const queue = uniqueQueue('log');
    const res = await call('GET', jobPath(queue, 'a/b'), { baseUrl: server.url, headers: { 'x-request-id': 'req-42' } });
    expect(res.status).to.equal(404);
    expect(res.headers.get('x-request-id')).to.equal('req-42');
    const [line, ...more] = await eventually(async () => linesOf('req-42').length > 0 && linesOf('req-42'));
    expect(more).to.have.length(0);
    expect(line).to.include({ level: 30, method: 'GET', route: '/v1/queues/{queue}/jobs/{id}', status: 404, queue, jobId: 'a/b', requestId: 'req-42' });
    expect(line.ms).to.be.a('number').and.at.least(0);

    const polled = await call('GET', '/v1/next', { baseUrl: server.url, query: { queue }, headers: { 'x-request-id': 'req-43' } });
    expect(polled.status).to.equal(204);
    expect(await eventually(async () => linesOf('req-43')[0])).to.include({ route: '/v1/next', status: 204, queue });
  });

  it('makes up a request id when the client sent none or an unusable one', async () => {
    for (const headers of [{}, { 'x-request-id': 'has spaces' }, { 'x-request-id': 'x'.repeat(129) }] as Array<Record<string, string>>) {
      const res = await call('GET', '/health', { baseUrl: server.url, headers });
      const id = res.headers.get('x-request-id')!;
      expect(id).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(await eventually(async () => linesOf(id)[0])).to.include({ route: '/health', status: 200 });
    }
  });

  it('never logs a token, a header or a body', async () => {
    const queue = uniqueQueue('log');
    const secret = 'sekrit-token-7f3a';
    const res = await call('POST', '/enqueue', {
      baseUrl: server.url,
      headers: { authorization: `Bearer ${secret}`, cookie: `session=${secret}`, 'x-request-id': 'req-secret' },
      json: { id: 'j1', queue, timeout: 30, payload: { password: secret }, state: { token: secret } },
    });
    expect(res.status).to.equal(202);
    const bad = await call('POST', '/enqueue', {
      baseUrl: server.url,
      headers: { authorization: `Bearer ${secret}`, 'x-request-id': 'req-secret-400' },
      json: { id: 'j2', queue, timeout: 30, payload: secret, nonsense: secret },
    });
    expect(bad.status).to.equal(400);
    const line = await eventually(async () => linesOf('req-secret')[0]);
    expect(line).to.include({ route: '/enqueue', status: 202, queue, jobId: 'j1' });
    await eventually(async () => linesOf('req-secret-400')[0]);
    expect(JSON.stringify(lines)).to.not.include(secret);
  });
});
