import { expect } from 'chai';
import { createLogger, defaults } from '../../server/src/index.js';
import { openDatabase, type Database, type Queryable, type Statement } from '../../server/src/db/index.js';
import { migrate } from '../../server/src/migrate.js';
import { claimJobs } from '../../server/src/sql/next.js';
import { Store } from '../../server/src/store.js';
import { uniqueQueue } from '../helpers/relay.js';

/**
 * The settlements of `POST /v1/next` (Store.settle): the completions in one statement (the
 * batch completion's), the failures with the fail statement, and all of them in one
 * transaction, so that a statement failing half-way leaves none applied (an error answer
 * means "nothing settled"). The fault is injected into the real database's statements.
 */
describe('Store.settle', () => {
  let inner: Database;
  let db: Database;
  let store: Store;
  const statements: string[] = [];
  /** The nth statement of this name (from now) fails, with a database error. */
  let failOn: { name: string; nth: number } | undefined;

  const recording = (q: Queryable): Queryable => ({
    query: ((statement: Statement | string, params?: unknown[]) => {
      const name = typeof statement === 'string' ? statement : statement.name;
      statements.push(name);
      if (failOn && name === failOn.name && --failOn.nth === 0) {
        failOn = undefined;
        return Promise.reject(Object.assign(new Error('injected: could not serialize access'), { code: '40001' }));
      }
      return q.query(statement, params);
    }) as Queryable['query'],
    exec: (sql) => q.exec(sql),
  });

  before(async () => {
    const config = { ...defaults, databaseUrl: process.env.DATABASE_URL || undefined, dataDir: 'memory://' };
    inner = await openDatabase(config, createLogger('silent'));
    await migrate(inner);
    db = {
      ...inner,
      kind: inner.kind,
      ...recording(inner),
      transaction: (fn) => inner.transaction((tx) => fn(recording(tx))),
      listen: (channel, onNotify) => inner.listen(channel, onNotify),
      close: () => inner.close(),
    };
    store = new Store(db);
  });
  after(() => db.close());
  beforeEach(() => {
    statements.length = 0;
    failOn = undefined;
  });

  async function leased(queue: string, ids: string[]) {
    await store.enqueueBatch(ids.map((id) => ({ id, queue, timeout: 30, max_retries: 3 })));
    const jobs = await claimJobs(inner, queue, ids.length);
    return jobs.map((j) => ({ queue, job_id: j.id, run_id: j.run_id }));
  }

  it('completes every delivery with one statement, outside a transaction when it is the only one', async () => {
    const queue = uniqueQueue();
    const refs = await leased(queue, ['a', 'b', 'c']);
    statements.length = 0;
    const settled = await store.settle(refs);
    expect(settled).to.deep.equal({ completed: refs, failed: [], not_found: [] });
    expect(statements).to.deep.equal(['relay_complete']);
  });

  it('rolls every settlement back when one statement fails, and throws', async () => {
    const queue = uniqueQueue();
    const [a, b, c] = await leased(queue, ['a', 'b', 'c']);
    statements.length = 0;
    // The completion and b's failure run first; c's failure is the one that fails.
    failOn = { name: 'relay_fail', nth: 2 };
    const error = await store.settle([a!, { ...b!, fail: { error: 'x' } }, { ...c!, fail: { error: 'y' } }]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(Error);
    expect(statements).to.deep.equal(['relay_complete', 'relay_fail', 'relay_fail']);
    // Nothing applied: the three deliveries are still in flight, and settle again as new.
    const again = await store.settle([a!, { ...b!, fail: { error: 'x' } }, { ...c!, fail: { error: 'y' } }]);
    expect(again.completed).to.deep.equal([a]);
    expect(again.failed.map((f) => [f.job_id, f.outcome])).to.deep.equal([
      ['b', 'retrying'],
      ['c', 'retrying'],
    ]);
    expect(again.not_found).to.deep.equal([]);
  });
});
