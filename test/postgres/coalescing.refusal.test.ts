import { expect } from 'chai';
import type { RelayServer } from '../../server/src/index.js';
import { freshDatabase, sql, type FreshDatabase } from '../helpers/postgres.js';
import { call, drain, uniqueQueue } from '../helpers/relay.js';
import { startRelay } from '../helpers/relay.js';

/**
 * When PostgreSQL itself refuses one member of a statement that concurrent requests share
 * (here a trigger refuses the id "poison", as a constraint or a data error would), every other
 * request still gets the answer it would have got alone: the server retries the members one
 * by one. Input checks catch what they can before a shared statement; this is what is left.
 */
describe('a shared statement refused by the database (PostgreSQL)', function () {
  this.timeout(60_000);
  let db: FreshDatabase;
  let server: RelayServer;
  const at = (path: string, options: Parameters<typeof call>[2] = {}) => ({ ...options, baseUrl: server.url });

  before(async () => {
    db = await freshDatabase('relay_refusal');
    server = await startRelay({ databaseUrl: db.url });
    await sql(
      db.url,
      `CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF (TG_OP = 'DELETE' AND OLD.id = 'poison') OR (TG_OP = 'INSERT' AND NEW.id = 'poison') THEN
           RAISE EXCEPTION 'poison' USING ERRCODE = '22023';
         END IF;
         RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
       END $$`,
    );
    await sql(db.url, 'CREATE TRIGGER refuse_poison BEFORE INSERT OR DELETE ON relay_jobs FOR EACH ROW EXECUTE FUNCTION refuse_poison()');
  });
  after(async () => {
    await server?.close();
    await db?.drop();
  });

  it('concurrent enqueues: only the refused one fails (422), the rest are stored', async () => {
    const queue = uniqueQueue();
    const ids = Array.from({ length: 100 }, (_, i) => (i === 37 ? 'poison' : String(i)));
    const results = await Promise.all(ids.map((id) => call('POST', '/enqueue', at('', { json: { id, queue, timeout: 30 } }))));
    results.forEach((r, i) => expect(r.status, `enqueue ${ids[i]}`).to.equal(ids[i] === 'poison' ? 422 : 202));
    const leased = await call('GET', '/v1/next', at('', { query: { queue, num_jobs: 1000 } }));
    expect(leased.body.map((j: { id: string }) => j.id).sort()).to.deep.equal(ids.filter((id) => id !== 'poison').sort());
  });

  it('concurrent completes: only the refused one fails, the rest complete', async () => {
    const queue = uniqueQueue();
    await sql(db.url, 'ALTER TABLE relay_jobs DISABLE TRIGGER refuse_poison');
    const ids = Array.from({ length: 300 }, (_, i) => (i === 150 ? 'poison' : String(i)));
    await call('POST', '/enqueue/batch', at('', { json: ids.map((id) => ({ id, queue, timeout: 30 })) }));
    await sql(db.url, 'ALTER TABLE relay_jobs ENABLE TRIGGER refuse_poison');
    const results = await Promise.all(ids.map((id) => call('DELETE', '/v1/complete', at('', { query: { queue, job_id: id } }))));
    results.forEach((r, i) => expect(r.status, `complete ${ids[i]}`).to.equal(ids[i] === 'poison' ? 422 : 200));
    const left = await call('GET', '/v1/next', at('', { query: { queue, num_jobs: 1000 } }));
    expect(left.body.map((j: { id: string }) => j.id)).to.deep.equal(['poison']);
  });
});
