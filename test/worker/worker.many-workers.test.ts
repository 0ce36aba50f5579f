import { expect } from 'chai';
import { call, enqueueBatch, eventually, next, relay, uniqueQueue } from '../helpers/relay.js';
import { Worker } from '../../worker/src/index.js';

/**
 * Correctness under load, not speed: how fast the jobs go is the bench's (scripts/bench/,
 * "process" phases), never asserted here.
 */
describe('Worker: many workers on one queue', () => {
  it('2 000 jobs through 4 workers of concurrency 8: every job completed exactly once', async function () {
    this.timeout(120_000);
    const queue = uniqueQueue('bulk');
    const total = 2000;
    const ids = Array.from({ length: total }, (_, i) => `job-${i}`);
    await enqueueBatch(ids.map((id, i) => ({ id, queue, timeout: 60, payload: { i } })));

    const processed = new Map<string, number>();
    const completed = new Map<string, number>();
    const trouble: string[] = [];
    let inProcess = 0;
    let most = 0;
    const workers = Array.from({ length: 4 }, () => {
      const worker = new Worker({
        logger: {},
        baseUrl: relay().url,
        queue,
        concurrency: 8,
        process: async (job) => {
          most = Math.max(most, ++inProcess);
          processed.set(job.id, (processed.get(job.id) ?? 0) + 1);
          await new Promise((resolve) => setImmediate(resolve));
          inProcess--;
        },
      });
      worker.on('completed', (job) => completed.set(job.id, (completed.get(job.id) ?? 0) + 1));
      for (const event of ['failed', 'leaseLost', 'requestError', 'pollError'] as const) {
        worker.on(event, (...args: unknown[]) => trouble.push(`${event}: ${String(args.at(-2) ?? args[0])}`));
      }
      return worker;
    });

    await Promise.all(workers.map((w) => w.start()));
    await eventually(async () => completed.size === total || trouble.length > 0, 110_000, 20);
    await Promise.all(workers.map((w) => w.stop()));

    expect(trouble).to.deep.equal([]);
    expect(most).to.be.at.most(32);
    expect(ids.filter((id) => processed.get(id) !== 1)).to.deep.equal([]);
    expect(ids.filter((id) => completed.get(id) !== 1)).to.deep.equal([]);
    expect(processed.size).to.equal(total);
    expect((await next(queue)).status).to.equal(204);
    expect((await call('GET', '/v1/failed', { query: { queue } })).body).to.deep.equal([]);
  });
});
