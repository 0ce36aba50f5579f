import type { Case } from '../case.js';
import { check, expectEqual, expectStatus, Skip } from '../expect.js';
import { completeAll, enqueue, expectEmpty, failJob, heartbeat, leaseIds, next } from './steps.js';

/** Parts of the contract a server may leave out or turn off: tokens, Idempotency-Key, the operations API, metrics. */

export const optionalCases: Case[] = [
  {
    name: 'whoami',
    description: "GET /v1/whoami answers the role of the kit's token (null when the server has no tokens)",
    async run(ctx) {
      const res = await ctx.api.send({ op: 'whoami' });
      expectStatus(res, 200, 'GET /v1/whoami');
      if (!ctx.features.has('auth')) expectEqual(res.body.role, null, 'the role on a server without tokens');
    },
  },
  {
    name: 'auth',
    description: 'with tokens: no token or a wrong one is a 401 problem with WWW-Authenticate that changes nothing; /health needs none',
    needs: ['auth'],
    async run(ctx) {
      const queue = ctx.queue();
      const job = { id: 'a', queue, timeout: 30 };
      for (const [what, headers] of [
        ['no token', {}],
        ['a wrong token', { authorization: 'Bearer relay-conformance-wrong-token' }],
      ] as const) {
        const res = await ctx.api.send({ op: 'enqueue', json: job, headers, noToken: true });
        expectStatus(res, 401, `an enqueue with ${what}`);
        check(/^Bearer\b/i.test(res.headers.get('www-authenticate') ?? ''), `the 401 to an enqueue with ${what} has no WWW-Authenticate: Bearer`);
        expectStatus(await ctx.api.send({ op: 'next', query: { queue }, headers, noToken: true }), 401, `a next with ${what}`);
      }
      expectStatus(await ctx.api.send({ op: 'health', noToken: true }), 200, 'GET /health without a token');
      await expectEmpty(ctx, queue, 'after enqueues without a valid token');
    },
  },
  {
    name: 'idempotency',
    description: 'Idempotency-Key: a repeat gets the first answer with Idempotent-Replayed: true and no second effect, even after the job finished; the key with another request is a 422 problem',
    needs: ['idempotency'],
    async run(ctx) {
      const queue = ctx.queue();
      const key = (k: string) => ({ 'idempotency-key': `${queue}-${k}` });
      const job = { id: 'i', queue, timeout: 30, payload: 1 };
      const first = await ctx.api.send({ op: 'enqueue', json: job, headers: key('enqueue') });
      expectStatus(first, 202, 'an enqueue with an Idempotency-Key');
      check(first.headers.get('idempotent-replayed') !== 'true', 'the first answer says Idempotent-Replayed: true');
      const repeat = await ctx.api.send({ op: 'enqueue', json: job, headers: key('enqueue') });
      if (repeat.status === 409) throw new Skip('the server does not honour Idempotency-Key (a repeated enqueue answered 409)');
      expectStatus(repeat, 202, 'the repeated enqueue');
      expectEqual(repeat.headers.get('idempotent-replayed'), 'true', 'Idempotent-Replayed of the repeat');
      const [leased] = await leaseIds(ctx, queue, ['i'], 10);
      const done = await ctx.api.send({ op: 'complete', query: { queue, job_id: 'i', run_id: leased!.run_id }, headers: key('complete') });
      expectStatus(done, 200, 'a complete with an Idempotency-Key');
      const doneAgain = await ctx.api.send({ op: 'complete', query: { queue, job_id: 'i', run_id: leased!.run_id }, headers: key('complete') });
      expectStatus(doneAgain, 200, 'the repeated complete of a completed job');
      expectEqual(doneAgain.headers.get('idempotent-replayed'), 'true', 'Idempotent-Replayed of the repeated complete');
      const late = await ctx.api.send({ op: 'enqueue', json: job, headers: key('enqueue') });
      expectStatus(late, 202, 'the repeated enqueue after the job completed');
      await expectEmpty(ctx, queue, 'after an enqueue repeated once its job completed (it must have no second effect)');
      const reused = await ctx.api.send({ op: 'enqueue', json: { ...job, payload: 2 }, headers: key('enqueue') });
      expectStatus(reused, 422, 'the key with another request');
      await expectEmpty(ctx, queue, 'after the key with another request');
    },
  },
  {
    name: 'operations-lookup',
    description: 'GET and HEAD /v1/queues/{queue}/jobs/{id} and the queue counts: waiting, scheduled, in flight; 404 for an unknown job; a heartbeat moves lease_expires_at',
    needs: ['operations'],
    async run(ctx) {
      const queue = ctx.queue();
      await enqueue(ctx, { id: 'w', queue, timeout: 30 });
      await enqueue(ctx, { id: 'f/1', queue, timeout: 30, payload: { p: 1 } });
      await enqueue(ctx, { id: 's', queue, timeout: 30, run_at: new Date(Date.now() + 3600_000).toISOString() });
      const [flying] = await leaseIds(ctx, queue, ['w']);
      const lookup = async (id: string) => {
        const res = await ctx.api.send({ op: 'getJob', params: { queue, id } });
        expectStatus(res, [200, 404], `GET the job ${JSON.stringify(id)}`);
        return res;
      };
      expectEqual((await lookup('w')).body.status, 'in_flight', 'the status of a job in flight');
      expectEqual([(await lookup('f/1')).body.status, (await lookup('f/1')).body.payload], ['waiting', { p: 1 }], 'status and payload of a waiting job (an id with a slash)');
      expectEqual((await lookup('s')).body.status, 'scheduled', 'the status of a job whose run_at is ahead');
      expectStatus(await lookup('nobody'), 404, 'GET of an unknown job');
      expectStatus(await ctx.api.send({ op: 'jobExists', params: { queue, id: 'f/1' } }), 200, 'HEAD of a job');
      expectStatus(await ctx.api.send({ op: 'jobExists', params: { queue, id: 'nobody' } }), 404, 'HEAD of an unknown job');

      const counts = await ctx.api.send({ op: 'getQueue', params: { queue } });
      expectStatus(counts, 200, 'GET the queue');
      expectEqual([counts.body.waiting, counts.body.scheduled, counts.body.in_flight, counts.body.failed, counts.body.paused], [1, 1, 1, 0, false], 'waiting, scheduled, in_flight, failed, paused');
      const all = await ctx.api.send({ op: 'listQueues' });
      expectStatus(all, 200, 'GET /v1/queues');
      check(all.body.some((q: { queue: string }) => q.queue === queue), 'GET /v1/queues does not list a queue with jobs');

      const before = (await lookup('w')).body.lease_expires_at as string;
      check((await heartbeat(ctx, flying!)) === 202, 'a heartbeat of a job in flight: 404');
      const after = (await lookup('w')).body.lease_expires_at as string;
      check(Date.parse(after) >= Date.parse(before) && after !== before, `a heartbeat did not move lease_expires_at (${before}, then ${after})`);

      const page1 = await ctx.api.send({ op: 'listJobs', query: { queue, status: 'waiting', limit: 1 } });
      expectStatus(page1, 200, 'GET /v1/jobs');
      expectEqual(
        page1.body.jobs.map((j: { id: string }) => j.id),
        ['f/1'],
        'the waiting jobs, first page',
      );
      const scheduled = await ctx.api.send({ op: 'listJobs', query: { queue, status: 'scheduled' } });
      expectStatus(scheduled, 200, 'GET /v1/jobs?status=scheduled');
      expectEqual(
        scheduled.body.jobs.map((j: { id: string }) => j.id),
        ['s'],
        'the scheduled jobs',
      );
      const done = await ctx.api.send({ op: 'completeBatch', json: ['w', 'f/1', 's'].map((id) => ({ queue, job_id: id })) });
      expectStatus(done, 200, 'complete/batch of the jobs');
      expectStatus(await lookup('f/1'), 404, 'GET of a completed job');
    },
  },
  {
    name: 'operations-pause',
    description: 'a paused queue accepts enqueues and leases nothing; resume wakes a waiting long poll',
    needs: ['operations'],
    async run(ctx) {
      const queue = ctx.queue();
      const paused = await ctx.api.send({ op: 'pauseQueue', params: { queue } });
      expectStatus(paused, 200, 'pause');
      expectEqual(paused.body.paused, true, 'paused after pause');
      try {
        await enqueue(ctx, { id: 'p', queue, timeout: 30 });
        await expectEmpty(ctx, queue, 'a paused queue');
        const polling = next(ctx, queue, 1, 20);
        const started = performance.now();
        const resumed = await ctx.api.send({ op: 'resumeQueue', params: { queue } });
        expectStatus(resumed, 200, 'resume');
        expectEqual(resumed.body.paused, false, 'paused after resume');
        const jobs = await polling;
        expectEqual(
          jobs.map((j) => j.id),
          ['p'],
          'the long poll waiting on the paused queue handed out',
        );
        check(performance.now() - started < 10_000, 'the long poll was not woken by resume');
        await completeAll(ctx, jobs);
      } finally {
        await ctx.api.send({ op: 'resumeQueue', params: { queue } }).catch(() => undefined);
      }
    },
  },
  {
    name: 'operations-cancel',
    description: 'DELETE /v1/queues/{queue}/jobs/{id} removes a waiting or in-flight job (204; the holder learns it at its heartbeat), then 404',
    needs: ['operations'],
    async run(ctx) {
      const queue = ctx.queue();
      await enqueue(ctx, { id: 'a', queue, timeout: 30 });
      await enqueue(ctx, { id: 'b', queue, timeout: 30 });
      const [a] = await leaseIds(ctx, queue, ['a']);
      expectStatus(await ctx.api.send({ op: 'cancelJob', params: { queue, id: 'a' } }), 204, 'cancel of a job in flight');
      check((await heartbeat(ctx, a!)) === 404, 'a heartbeat of a cancelled job: 202');
      expectStatus(await ctx.api.send({ op: 'cancelJob', params: { queue, id: 'b' } }), 204, 'cancel of a waiting job');
      expectStatus(await ctx.api.send({ op: 'cancelJob', params: { queue, id: 'b' } }), 404, 'cancel of a cancelled job');
      await expectEmpty(ctx, queue, 'after cancelling every job');
    },
  },
  {
    name: 'operations-replay',
    description: 'failed jobs: listed, replayed one by one (409 while the id is live) or all at once, and purged',
    needs: ['operations'],
    async run(ctx) {
      const queue = ctx.queue();
      const failOnce = async () => {
        const [job] = await leaseIds(ctx, queue, ['r']);
        const res = await failJob(ctx, job!, { error: 'boom' });
        expectEqual(res.outcome, 'failed', 'the outcome of a fail with no retry left');
      };
      await enqueue(ctx, { id: 'r', queue, timeout: 30, state: { s: 1 } });
      await failOnce();
      const job = await ctx.api.send({ op: 'getJob', params: { queue, id: 'r' } });
      expectStatus(job, 200, 'GET of a failed job');
      expectEqual([job.body.status, job.body.reason], ['failed', 'boom'], 'status and reason of a failed job');
      const listed = await ctx.api.send({ op: 'listJobs', query: { queue, status: 'failed' } });
      expectStatus(listed, 200, 'GET /v1/jobs?status=failed');
      expectEqual(
        listed.body.jobs.map((j: { id: string }) => j.id),
        ['r'],
        'the failed jobs',
      );

      await enqueue(ctx, { id: 'r', queue, timeout: 30 });
      expectStatus(await ctx.api.send({ op: 'retryJob', params: { queue, id: 'r' } }), 409, 'replay while the id is live');
      expectStatus(await ctx.api.send({ op: 'cancelJob', params: { queue, id: 'r' } }), 204, 'cancel of the live job');
      const replayed = await ctx.api.send({ op: 'retryJob', params: { queue, id: 'r' } });
      expectStatus(replayed, 200, 'replay of a failed job');
      expectEqual([replayed.body.status, replayed.body.state], ['waiting', { s: 1 }], 'status and state of the replayed job');
      await failOnce();

      const all = await ctx.api.send({ op: 'retryFailedJobs', params: { queue } });
      expectStatus(all, 200, 'replay of the failed jobs of the queue');
      expectEqual([all.body.retried, all.body.skipped], [1, 0], 'retried and skipped');
      await failOnce();

      const purged = await ctx.api.send({ op: 'purgeFailedJobs', params: { queue } });
      expectStatus(purged, 200, 'purge');
      check(purged.body.purged >= 1, `purged ${purged.body.purged}, expected at least the one failure`);
      expectStatus(await ctx.api.send({ op: 'getJob', params: { queue, id: 'r' } }), 404, 'GET of a purged job');
    },
  },
  {
    name: 'metrics',
    description: 'GET /metrics serves the Prometheus text format',
    needs: ['metrics'],
    async run(ctx) {
      const res = await ctx.api.send({ op: 'metrics' });
      expectStatus(res, 200, 'GET /metrics');
      check(/^# (HELP|TYPE) /m.test(res.text), 'GET /metrics is not in the Prometheus text format');
    },
  },
];
