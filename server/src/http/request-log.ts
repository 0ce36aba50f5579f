import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Request, RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { Contract } from './contract.js';

/*
 * One structured line per request at `info`, and the request's duration for the metrics.
 * The line names the request by its route template (never the raw path, which carries ids),
 * with the queue and job id it concerns and the request id, which is echoed back in
 * `x-request-id` so that a client can quote it. Headers, bodies and query strings are never
 * logged whole: a token or a payload must not reach the logs.
 */

/** A request id taken from the client: visible ASCII, no spaces, at most 128 characters. */
const SANE_ID = /^[\x21-\x7e]{1,128}$/;
/** Longest queue or job id written to a line; longer ones (a request refused for them) are cut. */
const MAX_LOGGED = 256;

const UNMATCHED = 'unmatched';

export interface RequestLogOptions {
  logger: Logger;
  contract: Contract;
  /** Given each request's duration, when metrics are on. */
  observe?: (method: string, route: string, status: number, seconds: number) => void;
}

function clip(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  return value.length > MAX_LOGGED ? `${value.slice(0, MAX_LOGGED)}…` : value;
}

/** A path parameter of a templated route (`/v1/queues/{queue}`), decoded. */
function pathParam(route: string, path: string, name: string): string | undefined {
  const at = route.split('/').indexOf(`{${name}}`);
  if (at < 0) return undefined;
  const segment = path.split('/')[at];
  if (segment === undefined) return undefined;
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** The queue and job id a request concerns: from its query, its path, or a single job's body. */
function subject(req: Request, route: string): { queue?: string; jobId?: string } {
  const query = req.query as Record<string, unknown>;
  const body = typeof req.body === 'object' && req.body !== null && !Array.isArray(req.body) ? (req.body as Record<string, unknown>) : {};
  return {
    queue: clip(query.queue ?? pathParam(route, req.path, 'queue') ?? body.queue),
    jobId: clip(query.job_id ?? pathParam(route, req.path, 'id') ?? body.id),
  };
}

export function requestLog(options: RequestLogOptions): RequestHandler {
  const { logger, contract, observe } = options;
  return (req, res, next) => {
    const started = performance.now();
    const given = req.headers['x-request-id'];
    const requestId = typeof given === 'string' && SANE_ID.test(given) ? given : randomUUID();
    res.setHeader('x-request-id', requestId);
    let done = false;
    const finished = () => {
      if (done) return;
      done = true;
      const seconds = (performance.now() - started) / 1000;
      const route = contract.operation(req.method, req.path)?.route ?? UNMATCHED;
      // A client that left before its answer (a long poll it gave up) is logged with the status
      // the answer would have had.
      const status = res.statusCode;
      observe?.(req.method, route, status, seconds);
      if (!logger.isLevelEnabled('info')) return;
      const { queue, jobId } = route === UNMATCHED ? {} : subject(req, route);
      logger.info(
        { requestId, method: req.method, route, status, ms: Math.round(seconds * 100_000) / 100, queue, jobId, aborted: res.writableFinished ? undefined : true },
        'request',
      );
    };
    res.once('finish', finished);
    res.once('close', finished);
    next();
  };
}
