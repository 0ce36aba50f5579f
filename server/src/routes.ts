import type { Express, Request, Response } from 'express';
import type { AppLimits } from './app.js';
import type { DatabaseKind } from './db/index.js';
import { fitAnswer } from './delivery.js';
import type { JobRef, LeasedJob, NewJob, RescheduleRequest, StateUpdate } from './jobs.js';
import type { LongPoll } from './long-poll.js';
import type { Store } from './store.js';

/*
 * HTTP only: read what the validator has already checked against openapi.yaml, call the
 * store, write the status. Express 5 forwards a rejected promise to the error handler.
 */

interface JobQuery {
  queue: string;
  job_id: string;
  run_id?: string;
}

function jobQuery(req: Request): JobQuery {
  return req.query as unknown as JobQuery;
}

/** No body at all keeps the state; any JSON body (null included) replaces it. */
function stateUpdate(req: Request): StateUpdate {
  return req.body === undefined ? { replace: false } : { replace: true, state: req.body };
}

/**
 * Aborts when the client goes away before its response was sent (ends a long poll). The
 * socket's end of input is the earliest sign; the response's close follows ticks later.
 */
function disconnected(req: Request, res: Response): AbortSignal {
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
 * Sends leased jobs; when the answer cannot be built, or the connection fails before its last
 * byte left this process, the jobs go back to their queue at once instead of staying leased to
 * nobody and burning a retry. (Bytes the kernel took are out of reach: a client that dies
 * after that gets its jobs back when the lease expires.)
 */
function deliver(res: Response, store: Store, jobs: LeasedJob[]): void {
  const release = () => void store.release(jobs).catch(() => undefined);
  try {
    res.status(200).json(jobs);
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
  longPoll: LongPoll;
  databaseKind: DatabaseKind;
  limits: AppLimits;
}

/**
 * Registered on the app itself, busiest first: Express tries routes in order, and a nested
 * Router cost every request one more dispatch.
 */
export function routes(app: Express, deps: RouteDeps): void {
  const { store, longPoll, databaseKind, limits } = deps;

  app.get(['/v1/next', '/next'], async (req, res) => {
    const { queue, num_jobs, wait } = req.query as unknown as { queue: string; num_jobs?: number; wait?: number };
    // num_jobs means "up to": relay clients ask for as many as they have free workers.
    const limit = Math.min(num_jobs ?? 1, limits.maxNumJobs);
    const jobs = limit === 0 ? [] : await longPoll.next(queue, limit, wait ?? 0, disconnected(req, res));
    if (jobs.length === 0) return void res.status(204).end();
    const { fits, left } = fitAnswer(jobs, limits.maxResponse);
    if (left.length > 0) await store.release(left);
    deliver(res, store, fits);
  });

  app.delete(['/v1/complete', '/complete'], async (req, res) => {
    const { queue, job_id, run_id } = jobQuery(req);
    await store.complete(queue, job_id, run_id);
    res.status(200).end();
  });

  app.post('/enqueue', async (req, res) => {
    await store.enqueue(req.body as NewJob);
    res.status(202).end();
  });

  app.post('/v1/complete/batch', async (req, res) => {
    res.status(200).json(await store.completeBatch(req.body as JobRef[]));
  });

  app.patch(['/v1/heartbeat', '/heartbeat'], async (req, res) => {
    const { queue, job_id, run_id } = jobQuery(req);
    await store.heartbeat(queue, job_id, stateUpdate(req), run_id);
    res.status(202).end();
  });

  app.post('/enqueue/batch', async (req, res) => {
    await store.enqueueBatch(req.body as NewJob[]);
    res.status(202).end();
  });

  app.post('/v1/fail', async (req, res) => {
    const { queue, job_id, run_id } = jobQuery(req);
    const body = (req.body ?? {}) as { error?: string; retry_in?: number };
    res.status(202).json(await store.fail(queue, job_id, { runId: run_id, error: body.error, retryIn: body.retry_in }));
  });

  app.post('/reschedule', async (req, res) => {
    await store.reschedule(req.body as RescheduleRequest);
    res.status(202).end();
  });

  app.get('/v1/failed', async (req, res) => {
    const { queue, job_id, limit } = req.query as unknown as { queue: string; job_id?: string; limit?: number };
    res.status(200).json(await store.listFailed(queue, job_id, limit ?? 100));
  });

  app.get('/health', async (_req, res) => {
    await store.ping();
    res.status(200).json({ status: 'ok', database: databaseKind });
  });
}
