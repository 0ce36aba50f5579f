import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import express, { type ErrorRequestHandler, type Express } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import type { Logger } from 'pino';
import { toProblem, toRelayError } from './errors.js';
import { originGuard, type OriginGuardOptions } from './http/origin-guard.js';
import { cacheValidatorRouteMatchers } from './route-cache.js';
import { routes } from './routes.js';
import type { LongPoll } from './long-poll.js';
import type { Store } from './store.js';

/** openapi.yaml sits at the repository root, or beside package.json in the packed server. */
export function specPath(): string {
  for (const rel of ['../openapi.yaml', '../../openapi.yaml']) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(path)) return path;
  }
  throw new Error('openapi.yaml not found beside the server package');
}

export interface AppOptions {
  store: Store;
  longPoll: LongPoll;
  databaseKind: 'postgres' | 'pglite';
  maxBody: number;
  validateResponses: boolean;
  logger: Logger;
  /** Which Host and Origin headers are answered (http/origin-guard.ts). */
  guard: OriginGuardOptions;
}

function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const relayError = toRelayError(err);
    if (relayError.status >= 500) logger.error({ err, method: req.method, url: req.originalUrl }, 'request failed');
    else if (relayError.status === 429) logger.warn({ err: (err as Error).message, url: req.originalUrl }, 'storage unavailable');
    if (res.headersSent) return void res.end();
    res.status(relayError.status).set(relayError.headers()).type('application/problem+json').send(JSON.stringify(toProblem(relayError)));
  };
}

export function createApp(options: AppOptions): Express {
  const { store, logger } = options;
  const app = express();
  app.disable('x-powered-by');
  // Nothing here is cacheable (next leases jobs; the rest change state): no hash per body.
  app.set('etag', false);
  cacheValidatorRouteMatchers();

  // First: a request a browser was made to send must not reach the body parser or a route.
  app.use(originGuard(options.guard));
  // strict: false because a payload or a heartbeat's state may be any JSON value, "x" or null.
  app.use(express.json({ strict: false, limit: options.maxBody, type: ['application/json', 'application/*+json'] }));
  app.use(
    OpenApiValidator.middleware({
      apiSpec: specPath(),
      validateRequests: { allowUnknownQueryParameters: false, coerceTypes: false, allErrors: true },
      validateResponses: options.validateResponses ? { allErrors: true } : false,
      validateFormats: true,
    }),
  );
  routes(app, store, options.longPoll, options.databaseKind);
  app.use(errorHandler(logger));
  return app;
}
