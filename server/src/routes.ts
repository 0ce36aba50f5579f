import type { operations } from '@relay-ts/client';
import type { Express, Request, Response } from 'express';
import type { ParamsDictionary } from 'express-serve-static-core';
import type { RequestLimits } from './config.js';
import type { DatabaseKind } from './db/index.js';
import { fitAnswer } from './delivery.js';
import { idempotent } from './http/idempotent.js';
import { traceparentOf } from './http/trace-context.js';
import type { Idempotency } from './idempotency.js';
import type { JobEvents } from './job-events.js';
import type { LeasedJob, StateUpdate } from './jobs.js';
import type { LongPoll } from './long-poll.js';
import type { Operations } from './operations.js';
import type { Logger } from './logger.js';
import { settleThenLease } from './settle-and-next.js';
import type { Store } from './store.js';

/*
 * HTTP only: read what the validator has already checked against openapi.yaml, call the
 * store or the long poll, write the status. Express 5 forwards a rejected promise to the
 * error handler. Each handler is typed with its operation's query and body as generated from
 * openapi.yaml: the validator guarantees them, and a contract change the routes do not follow
 * fails the type check.
 */

/** An operation's query parameters, as the validator has coerced them. */
type Query<O extends keyof operations> = operations[O]['parameters'] extends { query?: infer Q } ? NonNullable<Q> : never;
/** An operation's path parameters, as Express decoded them. */
type Path<O extends keyof operations> = operations[O]['parameters'] extends { path: infer P } ? P & ParamsDictionary : ParamsDictionary;
/** An operation's JSON body; undefined when the request had none (optional bodies). */
type Body<O extends keyof operations> = operations[O] extends { requestBody: { content: { 'application/json': infer B } } }
  ? B
  : operations[O] extends { requestBody?: { content: { 'application/json': infer B } } }
    ? B | undefined
    : undefined;

/** No body at all keeps the state; any JSON body (null included) replaces it. */
function stateUpdate(body: unknown): StateUpdate {
  return body === undefined ? { replace: false } : { replace: true, state: body };
}

/**
 * Aborts when the client goes away before its response was sent (ends a long poll). The
 * socket's end of input is the earliest sign; the response's close follows ticks later.
 */
function disconnected(req: Pick<Request, 'socket'>, res: Response): AbortSignal {
  const controller = new AbortController();
  const abort = () => {
    if (!res.writableEnded) controller.abort();
  };
  req.socket.once('end', abort);
  res.once('close', () => {
    req.socket.off('end', abort);
    abort();
  });
  return controller.signal;
}

/**
 * Sends leased jobs (in `body`, the jobs themselves by default); when the answer cannot be built, or the connection fails before its last
 * byte left this process, the jobs go back to their queue at once instead of staying leased to
 * nobody and burning a retry. (Bytes the kernel took are out of reach: a client that dies
 * after that gets its jobs back when the lease expires.)
 */
function deliver(res: Response, longPoll: LongPoll, jobs: LeasedJob[], body: unknown = jobs): void {
  const release = () => void longPoll.release(jobs).catch(() => undefined);
  try {
    res.status(200).json(body);
  } catch (err) {
    release();
    throw err;
  }
  const socket = res.socket;
  if (!socket || socket.destroyed) return release();
  if (socket.writableLength === 0) return;
  const onClose = () => {
    socket.off('drain', onDrain);
    release();
  };
  const onDrain = () => socket.off('close', onClose);
  socket.once('drain', onDrain);
  socket.once('close', onClose);
}

export interface RouteDeps {
  store: Store;
  operations: Operations;
  idempotency: Idempotency;
  /** openapi.yaml as text, served at /openapi.yaml and, parsed, at /openapi.json. */
  contract: { yaml: string; document: unknown };
  longPoll: LongPoll;
  databaseKind: DatabaseKind;
  limits: RequestLimits;
  /** Told of the jobs each `next` hands out (metrics). */
  events?: Pick<JobEvents, 'delivered'>;
  /** Where a lease that failed after its request's settlements were committed is reported (it answers no jobs instead). */
  logger?: Pick<Logger, 'warn'>;
}

/**
 * Registered on the app itself, busiest first: Express tries routes in order, and a nested
 * Router cost every request one more dispatch.
 */
export function routes(app: Express, deps: RouteDeps): void {
  const { store, longPoll, databaseKind, limits, idempotency } = deps;

  app.get<ParamsDictionary, unknown, Body<'next'>, Query<'next'>>(['/v1/next', '/next'], async (req, res) => {
    const { queue, num_jobs, wait } = req.query;
    // num_jobs means "up to": relay clients ask for as many as they have free workers.
    const limit = Math.min(num_jobs ?? 1, limits.maxNumJobs);
    const jobs = limit === 0 ? [] : await longPoll.next(queue, limit, wait ?? 0, disconnected(req, res));
    if (jobs.length === 0) return void res.status(204).end();
    const { fits, left } = fitAnswer(jobs, limits.maxResponse);
    if (left.length > 0) await longPoll.release(left);
    deliver(res, longPoll, fits);
    deps.events?.delivered(fits);
  });

  app.post<ParamsDictionary, unknown, Body<'settleAndNext'>, Query<'settleAndNext'>>('/v1/next', async (req, res) => {
    const { queue, num_jobs, wait } = req.query;
    // Before the settlements: a client that leaves while they run must still end the long poll.
    const gone = disconnected(req, res);
    const limit = Math.min(num_jobs ?? 1, limits.maxNumJobs);
    const lease = async () => {
      const jobs = limit === 0 ? [] : await longPoll.next(queue, limit, wait ?? 0, gone);
      const { fits, left } = fitAnswer(jobs, limits.maxResponse);
      if (left.length > 0) await longPoll.release(left);
      return fits;
    };
    const onLeaseError = (err: unknown) => deps.logger?.warn({ err, queue }, 'lease failed after its settlements were committed: answered with no jobs');
    const { jobs, settled } = await settleThenLease(store, req.body ?? [], lease, onLeaseError);
    deliver(res, longPoll, jobs, { jobs, settled });
    deps.events?.delivered(jobs);
  });

  app.delete<ParamsDictionary, unknown, Body<'complete'>, Query<'complete'>>(['/v1/complete', '/complete'], (req, res) =>
    idempotent(idempotency, 'DELETE /v1/complete', 200, req, res, async (key) => {
      const { queue, job_id, run_id } = req.query;
      await store.complete(queue, job_id, run_id, key);
      res.status(200).end();
    }),
  );

  app.post<ParamsDictionary, unknown, Body<'enqueue'>, Query<'enqueue'>>('/enqueue', (req, res) =>
    idempotent(idempotency, 'POST /enqueue', 202, req, res, async (key) => {
      await store.enqueue(req.body, key, traceparentOf(req.headers));
      res.status(202).end();
    }),
  );

  app.post<ParamsDictionary, unknown, Body<'completeBatch'>, Query<'completeBatch'>>('/v1/complete/batch', (req, res) =>
    idempotent(idempotency, 'POST /v1/complete/batch', 200, req, res, async (key) => {
      res.status(200).json(await store.completeBatch(req.body, key));
    }),
  );

  app.patch<ParamsDictionary, unknown, Body<'heartbeat'>, Query<'heartbeat'>>(['/v1/heartbeat', '/heartbeat'], async (req, res) => {
    const { queue, job_id, run_id } = req.query;
    await store.heartbeat(queue, job_id, stateUpdate(req.body), run_id);
    res.status(202).end();
  });

  app.post<ParamsDictionary, unknown, Body<'enqueueBatch'>, Query<'enqueueBatch'>>('/enqueue/batch', (req, res) =>
    idempotent(idempotency, 'POST /enqueue/batch', 202, req, res, async (key) => {
      await store.enqueueBatch(req.body, key, traceparentOf(req.headers));
      res.status(202).end();
    }),
  );

  app.post<ParamsDictionary, unknown, Body<'fail'>, Query<'fail'>>('/v1/fail', (req, res) =>
    idempotent(idempotency, 'POST /v1/fail', 202, req, res, async (key) => {
      const { queue, job_id, run_id } = req.query;
      const { error, retry_in } = req.body ?? {};
      res.status(202).json(await store.fail(queue, job_id, { runId: run_id, error, retryIn: retry_in }, key));
    }),
  );

  app.post<ParamsDictionary, unknown, Body<'reschedule'>, Query<'reschedule'>>('/reschedule', (req, res) =>
    idempotent(idempotency, 'POST /reschedule', 202, req, res, async (key) => {
      await store.reschedule(req.body, key);
      res.status(202).end();
    }),
  );

  app.get<ParamsDictionary, unknown, Body<'listFailed'>, Query<'listFailed'>>('/v1/failed', async (req, res) => {
    const { queue, job_id, limit } = req.query;
    res.status(200).json(await store.listFailed(queue, job_id, Math.min(limit ?? 100, limits.maxPageSize)));
  });

  operationRoutes(app, deps.operations, limits);

  // Set by http/auth.ts when the server has tokens; without them there is no role.
  app.get('/v1/whoami', (_req, res) => {
    res.status(200).json({ role: (res.locals.role as string | undefined) ?? null });
  });
  app.get('/openapi.yaml', (_req, res) => {
    res.type('application/yaml').send(deps.contract.yaml);
  });

  app.get('/openapi.json', (_req, res) => {
    res.json(deps.contract.document);
  });

  app.get('/health', async (_req, res) => {
    await store.ping();
    res.status(200).json({ status: 'ok', database: databaseKind });
  });
}

/** openapi.yaml's default for `minutes` (the validator checks values, it does not fill them in). */
const DEFAULT_THROUGHPUT_MINUTES = 15;

/** The operations API (issue 12): look up, list, count, throughput, pause, cancel, replay, purge. */
function operationRoutes(app: Express, operations: Operations, limits: RequestLimits): void {
  app.get<Path<'listJobs'>, unknown, Body<'listJobs'>, Query<'listJobs'>>('/v1/jobs', async (req, res) => {
    const { queue, status, limit, cursor } = req.query;
    res.status(200).json(await operations.listJobs(queue, status, Math.min(limit ?? 100, limits.maxPageSize), cursor));
  });

  app.get('/v1/queues', async (_req, res) => {
    res.status(200).json(await operations.queues());
  });

  app.get<Path<'getQueue'>>('/v1/queues/:queue', async (req, res) => {
    res.status(200).json(await operations.queue(req.params.queue));
  });

  app.get<Path<'listThroughput'>, unknown, Body<'listThroughput'>, Query<'listThroughput'>>('/v1/throughput', async (req, res) => {
    res.status(200).json(await operations.throughput(req.query.minutes ?? DEFAULT_THROUGHPUT_MINUTES));
  });

  app.get<Path<'getQueueThroughput'>, unknown, Body<'getQueueThroughput'>, Query<'getQueueThroughput'>>('/v1/queues/:queue/throughput', async (req, res) => {
    res.status(200).json(await operations.queueThroughput(req.params.queue, req.query.minutes ?? DEFAULT_THROUGHPUT_MINUTES));
  });

  app.post<Path<'pauseQueue'>>('/v1/queues/:queue/pause', async (req, res) => {
    res.status(200).json(await operations.pause(req.params.queue));
  });

  app.post<Path<'resumeQueue'>>('/v1/queues/:queue/resume', async (req, res) => {
    res.status(200).json(await operations.resume(req.params.queue));
  });

  // Before the GET of the same path: Express would answer a HEAD with the GET's handler.
  app.head<Path<'jobExists'>>('/v1/queues/:queue/jobs/:id', async (req, res) => {
    res.status((await operations.jobExists(req.params.queue, req.params.id)) ? 200 : 404).end();
  });

  app.get<Path<'getJob'>>('/v1/queues/:queue/jobs/:id', async (req, res) => {
    res.status(200).json(await operations.job(req.params.queue, req.params.id));
  });

  app.delete<Path<'cancelJob'>>('/v1/queues/:queue/jobs/:id', async (req, res) => {
    await operations.cancel(req.params.queue, req.params.id);
    res.status(204).end();
  });

  app.post<Path<'retryJob'>>('/v1/queues/:queue/jobs/:id/retry', async (req, res) => {
    res.status(200).json(await operations.retry(req.params.queue, req.params.id));
  });

  app.post<Path<'retryFailedJobs'>, unknown, Body<'retryFailedJobs'>, Query<'retryFailedJobs'>>('/v1/queues/:queue/failed/retry', async (req, res) => {
    res.status(200).json(await operations.retryFailed(req.params.queue, req.query.failed_before));
  });

  app.delete<Path<'purgeFailedJobs'>, unknown, Body<'purgeFailedJobs'>, Query<'purgeFailedJobs'>>('/v1/queues/:queue/failed', async (req, res) => {
    res.status(200).json(await operations.purgeFailed(req.params.queue, req.query.failed_before));
  });
}
