import { expect } from 'chai';
import type { QueueSummary, QueueThroughput } from '@relay-ts/client';
import { accessOf } from '../../server/ui/src/context.js';
import { byConcern, problemsOf } from '../../server/ui/src/queue-health.js';
import { parseRoute, href, type Route } from '../../server/ui/src/route.js';
import { checkSchema } from '../../server/ui/src/schema-check.js';
import { overviewQueues } from '../../server/ui/src/throughput.js';

/* The dashboard's logic that needs no browser: the overview's queues, routes, access, the form's schema check. */

const summary = (queue: string, counts: Partial<QueueSummary> = {}): QueueSummary => ({
  queue, waiting: 0, scheduled: 0, in_flight: 0, failed: 0, oldest_waiting_seconds: null, paused: false, ...counts,
});

describe('dashboard modules', () => {
  it('overviewQueues: the queues listed, then those that only had throughput, with zero counts', () => {
    const throughput = (queue: string): QueueThroughput => ({ queue, enqueued: 5, completed: 5, failed: 0, per_minute: [] });
    const listed = [summary('mail', { waiting: 3 }), summary('video', { paused: true })];
    const rows = overviewQueues(listed, new Map([['mail', throughput('mail')], ['drained', throughput('drained')]]));
    expect(rows).to.deep.equal([...listed, summary('drained')]);
    expect(overviewQueues(listed, new Map())).to.deep.equal(listed);
  });

  it('problem queues first: the most problems, then by name', () => {
    const queues = [summary('b'), summary('a'), summary('z', { failed: 1 }), summary('y', { paused: true, failed: 2 }), summary('x', { oldest_waiting_seconds: 120 })];
    expect(queues.sort(byConcern).map((q) => q.queue)).to.deep.equal(['y', 'x', 'z', 'a', 'b']);
    expect(problemsOf(summary('q', { oldest_waiting_seconds: 5 }))).to.deep.equal([]);
  });

  it('routes: what href writes, parseRoute reads back, names with slashes and spaces included', () => {
    const routes: Route[] = [
      { page: 'queues' },
      { page: 'failed' },
      { page: 'enqueue', queue: 'a/b c' },
      { page: 'queue', queue: 'mail/eu', status: 'in_flight' },
      { page: 'job', queue: 'mail', id: 'invoice 7/2?x#y' },
    ];
    for (const route of routes) expect(parseRoute(href(route))).to.deep.equal(route);
    expect(parseRoute('#/queues/mail?status=bogus')).to.deep.equal({ page: 'queue', queue: 'mail', status: 'waiting' });
    expect(parseRoute('#/nowhere')).to.deep.equal({ page: 'queues' });
    expect(parseRoute('#/queues/%E0%A4%A')).to.deep.equal({ page: 'queues' });
  });

  it('access: admin (or no tokens) acts, a producer enqueues, a reader reads; read-only mode acts for nobody', () => {
    expect(accessOf(null, false)).to.deep.equal({ read: true, operate: true, enqueue: true });
    expect(accessOf('admin', false)).to.deep.equal({ read: true, operate: true, enqueue: true });
    expect(accessOf('reader', false)).to.deep.equal({ read: true, operate: false, enqueue: false });
    expect(accessOf('producer', false)).to.deep.equal({ read: false, operate: false, enqueue: true });
    expect(accessOf('worker', false)).to.deep.equal({ read: false, operate: false, enqueue: false });
    expect(accessOf('admin', true)).to.deep.equal({ read: true, operate: false, enqueue: false });
    expect(accessOf(null, true)).to.deep.equal({ read: true, operate: false, enqueue: false });
  });

  it('checkSchema: the JSON Schema openapi.yaml uses for a new job', () => {
    const schema = {
      type: 'object', additionalProperties: false, required: ['id', 'timeout'],
      properties: {
        id: { type: 'string', minLength: 1, maxLength: 3, pattern: '^[^\\x00\\uD800-\\uDFFF]*$' },
        timeout: { type: 'integer', minimum: 0 },
        run_at: { type: 'string', format: 'date-time' },
      },
    };
    expect(checkSchema(schema, { id: 'a😀', timeout: 0, run_at: '2026-12-03T10:00:00+01:00' })).to.deep.equal([]);
    const fields = (value: unknown) => checkSchema(schema, value).map((p) => p.field);
    expect(fields({ timeout: 1 })).to.deep.equal(['id']);
    expect(fields({ id: '', timeout: 1 })).to.deep.equal(['id']);
    expect(fields({ id: 'abcd', timeout: 1 })).to.deep.equal(['id']);
    expect(fields({ id: 'a\u0000', timeout: 1 })).to.deep.equal(['id']);
    expect(fields({ id: 'a', timeout: 1.5 })).to.deep.equal(['timeout']);
    expect(fields({ id: 'a', timeout: -1 })).to.deep.equal(['timeout']);
    expect(fields({ id: 'a', timeout: 1, run_at: 'tomorrow' })).to.deep.equal(['run_at']);
    expect(fields({ id: 'a', timeout: 1, max_retry: 3 })).to.deep.equal(['max_retry']);
    expect(fields([])).to.deep.equal(['']);
  });
});
