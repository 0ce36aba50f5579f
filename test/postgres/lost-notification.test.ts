import { expect } from 'chai';
import pg from 'pg';
import { call, eventually, relay, startRelay, uniqueQueue } from '../helpers/relay.js';

describe('long poll on PostgreSQL', () => {
  it('delivers a job whose notification was lost, by the re-check, within the wait', async () => {
    const queue = uniqueQueue();
    const pending = call('GET', '/v1/next', { query: { queue, wait: 20 } });
    await eventually(async () => relay().waitingPolls >= 1, 5_000, 10);
    // Stored behind relay's back: no NOTIFY is sent, as if the notification were lost.
    const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await client.connect();
    try {
      await client.query(`INSERT INTO relay_jobs (queue, id, timeout) VALUES ($1, 'silent', 30)`, [queue]);
    } finally {
      await client.end();
    }
    const started = Date.now();
    const res = await pending;
    expect(res.status).to.equal(200);
    expect(res.body[0].id).to.equal('silent');
    expect(Date.now() - started).to.be.below(5000); // re-check is every second; the wait was 20 s
  });

  it('wakes a waiter on one server for a job enqueued through another', async () => {
    // Both re-check only once a minute: only the NOTIFY can wake the waiter within the bound.
    const [waiter, other] = await Promise.all([startRelay({ pollRecheckMs: 60_000 }), startRelay({ pollRecheckMs: 60_000 })]);
    try {
      const queue = uniqueQueue();
      const pending = call('GET', '/v1/next', { query: { queue, wait: 20 }, baseUrl: waiter.url });
      await eventually(async () => waiter.waitingPolls === 1, 5_000, 10);
      const started = Date.now();
      await call('POST', '/enqueue', { json: { id: 'x', queue, timeout: 30 }, baseUrl: other.url });
      const res = await pending;
      expect(res.status).to.equal(200);
      expect(res.body[0].id).to.equal('x');
      expect(Date.now() - started).to.be.below(5_000);
    } finally {
      await Promise.all([waiter.close(), other.close()]);
    }
  });

  it('under load sends a NOTIFY at most every 10 ms, and still announces the last change', async () => {
    const queue = uniqueQueue();
    const last = uniqueQueue();
    const listener = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await listener.connect();
    const heard: string[] = [];
    listener.on('notification', (n) => heard.push((n.payload ?? '').slice((n.payload ?? '').indexOf(':') + 1)));
    try {
      await listener.query('LISTEN relay_jobs');
      const started = Date.now();
      let i = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          for (let id = i++; id < 300; id = i++) {
            expect((await call('POST', '/enqueue', { json: { id: `j${id}`, queue, timeout: 30 } })).status).to.equal(202);
          }
        }),
      );
      // Enqueued while the throttle most likely holds a NOTIFY back: it must still go out.
      expect((await call('POST', '/enqueue', { json: { id: 'x', queue: last, timeout: 30 } })).status).to.equal(202);
      const elapsed = Date.now() - started;
      await eventually(async () => heard.includes(last), 2000);
      const forQueue = heard.filter((q) => q === queue).length;
      expect(forQueue).to.be.at.least(1);
      expect(forQueue, `${forQueue} NOTIFYs for 300 enqueues in ${elapsed} ms`).to.be.at.most(Math.ceil(elapsed / 10) + 1);
    } finally {
      await listener.end();
    }
  });
});

