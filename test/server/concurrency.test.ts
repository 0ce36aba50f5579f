import { expect } from 'chai';
import { consume, enqueueJobs, notExactlyOnce } from '../helpers/consumers.js';
import { drain, enqueueBatch, next, relay, uniqueQueue } from '../helpers/relay.js';

describe('concurrent consumers', function () {
  this.timeout(30_000);

  it('16 parallel consumers over 500 jobs receive every job exactly once', async () => {
    const queue = uniqueQueue('conc');
    const ids = await enqueueJobs(queue, 500);
    const tally = await consume(queue, {
      consumers: 16,
      baseUrls: [relay().url],
      // 1 to 5 jobs per call, varying between consumers and rounds.
      numJobs: (i, round) => ((i + round) % 5) + 1,
    });
    expect(tally.unexpected).to.deep.equal([]);
    expect(tally.overLimit).to.deep.equal([]);
    expect(notExactlyOnce(ids, tally)).to.deep.equal([]);
    expect([...tally.deliveries.values()].flat().every((attempt) => attempt === 1)).to.equal(true);
    expect((await next(queue)).status).to.equal(204);
  });

  it('never hands one caller more jobs than it asked for, nor one job to two callers', async () => {
    const queue = uniqueQueue('bounds');
    // Fewer jobs than the callers ask for in total, so they compete for the last ones.
    const ids = await enqueueJobs(queue, 90);
    const asked = Array.from({ length: 16 }, (_, i) => (i % 4) * 3 + 1); // 1, 4, 7, 10, ...
    const responses = await Promise.all(asked.map((n) => next(queue, n)));
    const got: string[] = [];
    responses.forEach((res, i) => {
      expect(res.status, res.text).to.be.oneOf([200, 204]);
      const jobs = res.status === 200 ? (res.body as Array<{ id: string }>) : [];
      expect(jobs.length, `caller ${i} asked for ${asked[i]}`).to.be.within(res.status === 200 ? 1 : 0, asked[i]!);
      got.push(...jobs.map((j) => j.id));
    });
    expect(new Set(got).size, 'a job went to two callers').to.equal(got.length);
    // What the callers did not take is still waiting, and nothing else is.
    const rest = (await drain(queue)).map((j: { id: string }) => j.id);
    expect([...got, ...rest].sort()).to.deep.equal([...ids].sort());
  });

  it('delivers every job exactly once while producers enqueue concurrently', async () => {
    const queue = uniqueQueue('mixed');
    const ids: string[] = [];
    let producing = true;
    const producers = Promise.all(
      Array.from({ length: 4 }, async (_, p) => {
        for (let b = 0; b < 5; b++) {
          const batch = Array.from({ length: 20 }, (_, i) => ({ id: `p${p}-b${b}-${i}`, queue, timeout: 60 }));
          const res = await enqueueBatch(batch);
          expect(res.status, res.text).to.equal(202);
          ids.push(...batch.map((j) => j.id));
        }
      }),
    ).finally(() => (producing = false));
    const tally = await consume(queue, {
      consumers: 8,
      baseUrls: [relay().url],
      numJobs: (i) => (i % 3) + 1,
      keepGoing: () => producing,
    });
    await producers;
    expect(tally.unexpected).to.deep.equal([]);
    expect(tally.overLimit).to.deep.equal([]);
    // A consumer may have seen a 204 just before the last batch landed: collect the rest.
    const rest = (await drain(queue)).map((j: { id: string }) => j.id);
    for (const id of rest) tally.deliveries.set(id, [...(tally.deliveries.get(id) ?? []), 1]);
    expect(ids).to.have.length(400);
    expect(notExactlyOnce(ids, tally)).to.deep.equal([]);
  });
});
