import { expect } from 'chai';
import { performance } from 'node:perf_hooks';
import { RelayClient, RouteNotFoundError } from '@relay-ts/client';
import { call, complete, enqueue, eventually, heartbeat, next, relay, sleep, uniqueQueue } from '../helpers/relay.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { Recorder, gate, holdsNoJob, within } from '../helpers/worker-kit.js';
import { Worker, JobTimeoutError, LeaseLostError, type ActiveJob } from '../../worker/src/index.js';

const failed = async (queue: string) => (await call('GET', '/v1/failed', { query: { queue } })).body as Array<{ id: string; reason: string }>;


describe('Worker: its own lease clock', () => {
  let proxy: TcpProxy;
  beforeEach(async () => {
    proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(relay().url).port) });
  });
  afterEach(() => proxy.close());

  for (const mode of ['refuse', 'blackhole'] as const) {
    it(`cut from the server (${mode}) past the lease, aborts job.signal before another consumer gets the job, and sends nothing more for it`, async function () {
      this.timeout(30_000);
      const queue = uniqueQueue('clock');
      await enqueue({ id: 'a', queue, timeout: 2, max_retries: 5 });
      // The worker reaches the server through the proxy; the other consumer directly.
      const recorder = new Recorder();
      const started = gate();
      const aborted = gate();
      let abortedAt = 0;
      let abortedWall = 0;
      let reason: unknown;
      const lost: Array<[ActiveJob, LeaseLostError]> = [];
      const worker = new Worker({
        client: recorder.client({ baseUrl: proxy.proxiedUrl(relay().url) }),
        queue,
        logger: {},
        process: async (job) => {
          started.open();
          await new Promise((resolve) => job.signal.addEventListener('abort', resolve));
          abortedAt = performance.now();
          abortedWall = Date.now();
          reason = job.signal.reason;
          aborted.open();
        },
      });
      worker.on('leaseLost', (job, error) => lost.push([job, error]));
      const beforeStart = performance.now();
      await worker.start();
      try {
        await within(started.promise, 10_000, 'the job started');
        await proxy.cut(mode);

        let other: { id: string; run_id: string; attempt: number } | undefined;
        let takenAt = 0;
        const deadline = Date.now() + 20_000;
        while (!other) {
          expect(Date.now(), 'another consumer got the job in time').to.be.below(deadline);
          const res = await next(queue);
          if (res.status === 200) {
            other = res.body[0];
            takenAt = performance.now();
          } else {
            await sleep(20);
          }
        }
        await within(aborted.promise, 10_000, 'the signal aborted');

        expect(other.attempt).to.equal(2);
        expect(abortedAt, 'aborted before the other consumer got the job').to.be.below(takenAt);
        // Never before the lease could have ended: two seconds after the poll that brought it.
        expect(abortedAt - beforeStart).to.be.at.least(2000);
        expect(reason).to.be.instanceOf(LeaseLostError);
        expect(lost.map(([job]) => job.id)).to.deep.equal(['a']);
        expect((lost[0]![1].cause as Error).message).to.match(/no heartbeat was answered within the lease/);

        // Back online: the worker sends nothing more for the job, and the other consumer holds it.
        await proxy.restore();
        await eventually(async () => holdsNoJob(worker));
        const afterAbort = recorder.calls.filter((c) => c.path !== '/v1/next' && c.at > abortedWall);
        expect(afterAbort.map((c) => `${c.method} ${c.path}`), 'requests after the abort').to.deep.equal([]);
        expect(recorder.seen('/v1/complete/batch').concat(recorder.seen('/v1/complete'), recorder.seen('/v1/fail'))).to.deep.equal([]);
        expect((await heartbeat(queue, 'a', { run_id: other.run_id })).status).to.equal(202);
        expect((await complete(queue, 'a', other.run_id)).status).to.equal(200);
      } finally {
        await proxy.restore();
        await worker.stop();
      }
    });
  }

  it('a job a long poll brought after more than half its lease is confirmed by a heartbeat, then runs and completes', async function () {
    this.timeout(20_000);
    const queue = uniqueQueue('clock');
    const recorder = new Recorder();
    const events: string[] = [];
    recorder.onRequest = (c) => void (c.path === '/v1/heartbeat' && events.push('heartbeat'));
    const worker = new Worker({
      client: recorder.client(),
      queue,
      waitSeconds: 10,
      logger: {},
      process: async (job) => {
        events.push('started');
        await sleep(300);
        expect(job.signal.aborted).to.equal(false);
      },
    });
    let completed = 0;
    worker.on('completed', () => completed++);
    worker.on('leaseLost', () => events.push('lost'));
    await worker.start();
    try {
      // The server holds the poll longer than the job's whole lease before the job comes.
      await eventually(async () => recorder.polls().length === 1);
      await sleep(1500);
      await enqueue({ id: 'late', queue, timeout: 1 });
      await eventually(async () => completed === 1, 10_000);
    } finally {
      await worker.stop();
    }
    expect(events.slice(0, 2)).to.deep.equal(['heartbeat', 'started']);
    expect(events).not.to.include('lost');
    expect(await failed(queue)).to.deep.equal([]);
  });

  it('treats a heartbeat answered 404 for a missing route as a failed request, not a lost lease', async function () {
    this.timeout(15_000);
    const queue = uniqueQueue('clock');
    await enqueue({ id: 'a', queue, timeout: 5 });
    // Heartbeats go to a path the server does not have (a proxy's rewrite gone wrong): a real 404 of the server.
    const misrouted = (request: Request) => {
      const url = new URL(request.url);
      if (url.pathname !== '/v1/heartbeat') return fetch(request);
      url.pathname = `/nope${url.pathname}`;
      return fetch(new Request(url, { method: request.method, headers: request.headers, signal: request.signal }));
    };
    const errors: unknown[] = [];
    let completed = 0;
    let lost = 0;
    const worker = new Worker({
      client: new RelayClient({ baseUrl: relay().url, fetch: misrouted }),
      queue,
      heartbeatIntervalMs: 200,
      logger: {},
      process: async (job) => {
        await sleep(800);
        expect(job.signal.aborted).to.equal(false);
      },
    });
    worker.on('requestError', (_job, error, operation) => errors.push([operation, error]));
    worker.on('completed', () => completed++);
    worker.on('leaseLost', () => lost++);
    await worker.start();
    try {
      await eventually(async () => completed === 1, 5000);
    } finally {
      await worker.stop();
    }
    expect(lost).to.equal(0);
    expect(errors.length).to.be.at.least(1);
    for (const [operation, error] of errors as Array<[string, Error]>) {
      expect(operation).to.equal('heartbeat');
      expect(error).to.be.instanceOf(RouteNotFoundError);
      // The URL the client meant to reach (the rewrite happened below it).
      expect(error.message).to.include(`PATCH ${relay().url}/v1/heartbeat answered 404`);
    }
    expect((await next(queue)).status).to.equal(204);
  });
});

describe('Worker: jobTimeoutMs', () => {
  it('aborts job.signal with a JobTimeoutError and fails the job with it', async () => {
    const queue = uniqueQueue('limit');
    await enqueue({ id: 'slow', queue, timeout: 30 });
    let reason: unknown;
    const failures: Array<[unknown, unknown]> = [];
    const worker = new Worker({
      baseUrl: relay().url,
      queue,
      jobTimeoutMs: 300,
      logger: {},
      process: async (job) => {
        await new Promise((resolve) => job.signal.addEventListener('abort', resolve));
        reason = job.signal.reason;
      },
    });
    worker.on('failed', (_job, error, result) => failures.push([error, result]));
    await worker.start();
    try {
      await eventually(async () => failures.length === 1, 5000);
    } finally {
      await worker.stop();
    }
    expect(reason).to.be.instanceOf(JobTimeoutError).and.include({ jobId: 'slow', queue, timeoutMs: 300 });
    expect(failures[0]![0]).to.equal(reason);
    expect(failures[0]![1]).to.deep.equal({ outcome: 'failed' });
    const [stored] = await failed(queue);
    expect(stored).to.include({ id: 'slow' });
    expect(stored!.reason).to.include('ran longer than jobTimeoutMs (300 ms)');
  });

  it('fails a job whose process ignores the signal at the limit, keeps its slot until process returns, and sends nothing after', async function () {
    this.timeout(10_000);
    const queue = uniqueQueue('limit');
    await enqueue({ id: 'stubborn', queue, timeout: 30, max_retries: 2 });
    const recorder = new Recorder();
    const returned: string[] = [];
    const worker = new Worker({
      client: recorder.client(),
      queue,
      jobTimeoutMs: 200,
      logger: {},
      process: async (job) => {
        await sleep(1500);
        returned.push(job.run_id);
      },
    });
    const seenAtFailure: Array<{ runId: string; returned: boolean; running: number; outcome: string | undefined }> = [];
    worker.on('failed', (job, error, result) => {
      expect(error).to.be.instanceOf(JobTimeoutError);
      seenAtFailure.push({ runId: job.run_id, returned: returned.includes(job.run_id), running: worker.jobs.processing, outcome: result?.outcome });
    });
    await worker.start();
    try {
      await eventually(async () => returned.length === 1, 5000);
    } finally {
      // Returns once every job in hand is done with, whatever was to be sent for it sent.
      await worker.stop();
    }
    const first = returned[0]!;
    expect(seenAtFailure[0]).to.deep.equal({ runId: first, returned: false, running: 1, outcome: 'retrying' });
    const ofFirst = (path: string) =>
      recorder.seen(path).filter((c) =>
        path === '/v1/complete/batch' ? (JSON.parse(c.body) as Array<{ run_id?: string }>).some((r) => r.run_id === first) : c.query.get('run_id') === first,
      );
    expect(ofFirst('/v1/fail')).to.have.length(1);
    expect(ofFirst('/v1/complete/batch').concat(ofFirst('/v1/complete'))).to.deep.equal([]);
  });

  it('leaves a job that finishes in time alone, and refuses a limit that is not a positive number', async () => {
    const queue = uniqueQueue('limit');
    await enqueue({ id: 'quick', queue, timeout: 30 });
    const worker = new Worker({ baseUrl: relay().url, queue, jobTimeoutMs: 5000, logger: {}, process: async () => { await sleep(50); } });
    let completed = 0;
    worker.on('completed', () => completed++);
    await worker.start();
    try {
      await eventually(async () => completed === 1, 5000);
    } finally {
      await worker.stop();
    }
    for (const jobTimeoutMs of [0, -1, Number.NaN]) {
      const make = () => new Worker({ logger: {}, baseUrl: relay().url, queue, jobTimeoutMs, process: async () => undefined });
      expect(make, String(jobTimeoutMs)).to.throw(TypeError, /jobTimeoutMs/);
    }
  });
});
