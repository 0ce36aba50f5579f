import { expect } from 'chai';
import { createLogger, defaults } from '../../server/src/index.js';
import { openDatabase, type Database, type Statement } from '../../server/src/db/index.js';
import type { LeasedJob } from '../../server/src/jobs.js';
import { LongPoll } from '../../server/src/long-poll.js';
import { migrate } from '../../server/src/migrate.js';
import { Store } from '../../server/src/store.js';
import { eventually, sleep, uniqueQueue } from '../helpers/relay.js';

/**
 * The suite's database (PGlite in memory, or DATABASE_URL), with the claims (`relay_next`)
 * counted, and held back while `hold` is set: the statements themselves run as in production.
 */
class CountedDatabase {
  claims = 0;
  /** Claims the database has answered. */
  answered = 0;
  hold: Promise<void> | undefined;
  readonly db: Database;

  constructor(inner: Database) {
    const query = (async (statement: Statement | string, params?: unknown[]) => {
      if (typeof statement !== 'string' && statement.name === 'relay_next') {
        this.claims++;
        if (this.hold) await this.hold;
        const result = await inner.query(statement, params);
        this.answered++;
        return result;
      }
      return inner.query(statement, params);
    }) as Database['query'];
    this.db = {
      kind: inner.kind,
      query,
      exec: (sql) => inner.exec(sql),
      transaction: (fn) => inner.transaction(fn),
      listen: (channel, onNotify) => inner.listen(channel, onNotify),
      close: () => inner.close(),
    };
  }
}

describe('LongPoll: a queue whose last claim found it empty', () => {
  let counted: CountedDatabase;
  let store: Store;
  let longPoll: LongPoll;

  async function open(recheckMs: number): Promise<void> {
    const config = { ...defaults, databaseUrl: process.env.DATABASE_URL || undefined, dataDir: 'memory://' };
    const inner = await openDatabase(config, createLogger('silent'));
    await migrate(inner);
    counted = new CountedDatabase(inner);
    const announce = (queues: string[]) => queues.forEach((q) => longPoll.notify(q));
    longPoll = new LongPoll(counted.db, announce, { recheckMs });
    store = new Store(counted.db, { onAvailable: announce, handOff: longPoll });
  }

  afterEach(async () => {
    longPoll.close();
    await counted.db.close();
  });

  const ids = (jobs: LeasedJob[]) => jobs.map((j) => j.id);

  it('lets a new wait sleep without a claim, and still hands it the next job', async () => {
    await open(60_000);
    const queue = uniqueQueue('known-empty');
    const first = longPoll.next(queue, 1, 10);
    await eventually(async () => longPoll.waiting === 1 && counted.answered === 1);
    const second = longPoll.next(queue, 1, 10);
    await sleep(50);
    expect(longPoll.waiting).to.equal(2);
    expect(counted.claims, 'the second wait found the queue known empty').to.equal(1);

    // A job enqueued now is stored leased to one of them: still no claim.
    await store.enqueue({ id: 'a', queue, timeout: 30 });
    const tagged = (wait: Promise<LeasedJob[]>, name: string) => wait.then((jobs) => ({ name, jobs }));
    const answered = await Promise.race([tagged(first, 'first'), tagged(second, 'second')]);
    expect(ids(answered.jobs)).to.deep.equal(['a']);
    expect(counted.claims).to.equal(1);

    // A batch is announced: the mark goes, and the other waiter claims what it stored.
    await store.enqueueBatch([{ id: 'b', queue, timeout: 30 }]);
    expect(ids(await (answered.name === 'first' ? second : first))).to.deep.equal(['b']);
    expect(counted.claims).to.equal(2);
  });

  it('does not trust an empty answer when jobs were announced while the claim ran', async () => {
    await open(60_000);
    const queue = uniqueQueue('known-empty');
    let release!: () => void;
    counted.hold = new Promise<void>((resolve) => (release = resolve));
    const first = longPoll.next(queue, 1, 0);
    await eventually(async () => counted.claims === 1);
    longPoll.notify(queue);
    counted.hold = undefined;
    release();
    expect(await first).to.deep.equal([]);

    // Marked empty, the wait would sleep until its 60 s re-check.
    const second = longPoll.next(queue, 1, 10);
    await eventually(async () => counted.claims === 2, 1000);
    longPoll.close();
    expect(await second).to.deep.equal([]);
  });

  it('hears of a failed job retried at once (retry_in 0), without waiting for the re-check', async () => {
    await open(60_000);
    const queue = uniqueQueue('known-empty');
    await store.enqueue({ id: 'a', queue, timeout: 30, max_retries: 1 });
    const [leased] = await longPoll.next(queue, 1, 0);
    expect(await longPoll.next(queue, 1, 0), 'marks the queue empty').to.deep.equal([]);
    const waiting = longPoll.next(queue, 1, 10);
    expect(await store.fail(queue, 'a', { runId: leased!.run_id, error: 'again', retryIn: 0 })).to.have.property('outcome', 'retrying');
    const jobs = await Promise.race([waiting, sleep(3_000).then(() => 'still waiting')]);
    expect(jobs).to.not.equal('still waiting');
    expect(ids(jobs as LeasedJob[])).to.deep.equal(['a']);
  });

  it('lasts the re-check interval: a job that became due unannounced reaches a new wait within it', async () => {
    await open(400);
    const queue = uniqueQueue('known-empty');
    expect(await longPoll.next(queue, 1, 0)).to.deep.equal([]);
    const claims = counted.claims;
    const started = Date.now();
    const waiting = longPoll.next(queue, 1, 10);
    expect(counted.claims, 'the wait began without a claim').to.equal(claims);
    // Stored behind the store's back, as a job whose run_at passes is: nothing announces it.
    await counted.db.query(`INSERT INTO relay_jobs (queue, id, timeout, payload) VALUES ($1, 'due', 30, 'null')`, [queue]);
    expect(ids(await waiting)).to.deep.equal(['due']);
    expect(Date.now() - started, 'found by the 400 ms re-check, long before the end of the wait').to.be.below(2_000);

    // Once the mark is older than the interval, a new wait claims at once.
    expect(await longPoll.next(queue, 1, 0)).to.deep.equal([]);
    await sleep(450);
    const before = counted.claims;
    const later = longPoll.next(queue, 1, 10);
    expect(counted.claims, 'claimed as the wait began').to.equal(before + 1);
    longPoll.close();
    expect(await later).to.deep.equal([]);
  });
});
