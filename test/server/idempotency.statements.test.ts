import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { createLogger, defaults } from '../../server/src/index.js';
import { openDatabase, type Database, type Statement } from '../../server/src/db/index.js';
import { JobExistsError, JobNotFoundError } from '../../server/src/errors.js';
import { Idempotency, type IdempotencyKey } from '../../server/src/idempotency.js';
import { migrate } from '../../server/src/migrate.js';
import { Store } from '../../server/src/store.js';
import { uniqueQueue } from '../helpers/relay.js';

/**
 * Keyed single enqueues and completes that share a statement have their effect and remember
 * their answers in that one statement: the statement picks each key's answer by its request's
 * outcome. Driven through the Store, so that which requests share a statement is certain: the
 * coalescer runs the first two submitted at once alone, and those submitted meanwhile together.
 */
describe('keyed requests sharing one statement', () => {
  let db: Database;
  let store: Store;
  let idempotency: Idempotency;
  const statements: string[] = [];

  before(async () => {
    const config = { ...defaults, databaseUrl: process.env.DATABASE_URL || undefined, dataDir: 'memory://' };
    const inner = await openDatabase(config, createLogger('silent'));
    await migrate(inner);
    db = {
      ...inner,
      kind: inner.kind,
      query: ((statement: Statement | string, params?: unknown[]) => {
        if (typeof statement !== 'string') statements.push(statement.name);
        return inner.query(statement, params);
      }) as Database['query'],
      exec: (sql) => inner.exec(sql),
      transaction: (fn) => inner.transaction(fn),
      listen: (channel, onNotify) => inner.listen(channel, onNotify),
      close: () => inner.close(),
    };
    idempotency = new Idempotency(db, 3600);
    store = new Store(db, { idempotency });
  });

  after(() => db.close());
  beforeEach(() => void (statements.length = 0));

  const keyFor = (scope: string, successStatus: number): IdempotencyKey => ({ scope, key: `k-${randomUUID()}`, fingerprint: randomUUID(), successStatus });
  const settled = (p: Promise<unknown>) => p.then(() => 'ok' as const, (err: unknown) => err);

  it('enqueues: the first request for a (queue, id) in the statement is stored, and each key keeps what its request got', async () => {
    const queue = uniqueQueue();
    const busy = uniqueQueue();
    const fillers = [0, 1].map((i) => settled(store.enqueue({ id: `filler-${i}`, queue: busy, timeout: 30 }, keyFor('POST /enqueue', 202))));
    const keys = Array.from({ length: 6 }, () => keyFor('POST /enqueue', 202));
    const outcomes = await Promise.all(keys.map((k) => settled(store.enqueue({ id: 'one', queue, timeout: 30 }, k))));
    expect(await Promise.all(fillers)).to.deep.equal(['ok', 'ok']);
    expect(statements.filter((s) => s === 'relay_enqueue_each_keyed'), 'two fillers alone, the six together').to.have.length(3);
    expect(statements.filter((s) => s !== 'relay_enqueue_each_keyed'), 'nothing but the keyed statements').to.deep.equal([]);

    expect(outcomes[0]).to.equal('ok');
    for (const o of outcomes.slice(1)) expect(o).to.be.instanceOf(JobExistsError);
    const remembered = await Promise.all(keys.map((k) => idempotency.find(k)));
    expect(remembered.map((r) => r?.status)).to.deep.equal([202, 409, 409, 409, 409, 409]);
    expect(JSON.parse(remembered[1]!.body!).type).to.equal('urn:relay-ts:problem:job-exists');
  });

  it('completes: the first reference that removes a job succeeds, and each key keeps what its request got', async () => {
    const queue = uniqueQueue();
    const busy = uniqueQueue();
    await store.enqueueBatch([{ id: 'one', queue, timeout: 30 }, ...[0, 1].map((i) => ({ id: `filler-${i}`, queue: busy, timeout: 30 }))]);
    statements.length = 0;
    const fillers = [0, 1].map((i) => settled(store.complete(busy, `filler-${i}`, undefined, keyFor('DELETE /v1/complete', 200))));
    const keys = Array.from({ length: 6 }, () => keyFor('DELETE /v1/complete', 200));
    const outcomes = await Promise.all(keys.map((k, i) => settled(store.complete(queue, i === 0 ? 'missing' : 'one', undefined, k))));
    expect(await Promise.all(fillers)).to.deep.equal(['ok', 'ok']);
    expect(statements, 'two fillers alone, the six together').to.deep.equal(['relay_complete_keyed', 'relay_complete_keyed', 'relay_complete_keyed']);

    expect(outcomes[0]).to.be.instanceOf(JobNotFoundError);
    expect(outcomes[1]).to.equal('ok');
    for (const o of outcomes.slice(2)) expect(o).to.be.instanceOf(JobNotFoundError);
    const remembered = await Promise.all(keys.map((k) => idempotency.find(k)));
    expect(remembered.map((r) => r?.status)).to.deep.equal([404, 200, 404, 404, 404, 404]);
    expect(remembered[1]!.body).to.equal(null);
  });

  it('a taken key among them leaves nothing of the statement behind: the others run again without it', async () => {
    const queue = uniqueQueue();
    const taken = keyFor('POST /enqueue', 202);
    await store.enqueue({ id: 'first', queue, timeout: 30 }, taken);
    statements.length = 0;
    const busy = uniqueQueue();
    const fillers = [0, 1].map((i) => settled(store.enqueue({ id: `filler-${i}`, queue: busy, timeout: 30 }, keyFor('POST /enqueue', 202))));
    const fresh = Array.from({ length: 3 }, () => keyFor('POST /enqueue', 202));
    const outcomes = await Promise.all([
      settled(store.enqueue({ id: 'a', queue, timeout: 30 }, fresh[0])),
      settled(store.enqueue({ id: 'first', queue, timeout: 30 }, taken)),
      settled(store.enqueue({ id: 'b', queue, timeout: 30 }, fresh[1])),
      settled(store.enqueue({ id: 'c', queue, timeout: 30 }, fresh[2])),
    ]);
    await Promise.all(fillers);
    expect(outcomes[1], 'the resend is told its key was taken (the route replays the first answer)').to.have.property('name', 'KeyTakenError');
    expect([outcomes[0], outcomes[2], outcomes[3]]).to.deep.equal(['ok', 'ok', 'ok']);
    expect(statements.filter((s) => s === 'relay_enqueue_each_keyed'), 'the fillers, the shared statement, and it again without the taken key').to.have.length(4);
    const remembered = await Promise.all(fresh.map((k) => idempotency.find(k)));
    expect(remembered.map((r) => r?.status)).to.deep.equal([202, 202, 202]);
    expect(await store.enqueueBatch(['first', 'a', 'b', 'c'].map((id) => ({ id, queue, timeout: 30 }))), 'all four are stored').to.equal(0);
  });
});
