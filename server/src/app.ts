import express, { type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { RequestLimits } from './config.js';
import { RouteNotFoundError, toProblem, toRelayError } from './errors.js';
import type { ConnectionCap } from './http/connections.js';
import { auth, type AuthToken } from './http/auth.js';
import { Contract, specPath } from './http/contract.js';
import { intake } from './http/intake.js';
import { dashboard } from './http/ui.js';
import { serveMetrics } from './http/metrics-route.js';
import { requestLog } from './http/request-log.js';
import { requestValidator, stockRequestValidator } from './http/validator.js';
import { originGuard, type OriginGuardOptions } from './http/origin-guard.js';
import { routes } from './routes.js';
import type { Idempotency } from './idempotency.js';
import type { LongPoll } from './long-poll.js';
import type { Metrics } from './metrics.js';
import type { Operations } from './operations.js';
import type { Store } from './store.js';

export { specPath };


export interface AppOptions {
  store: Store;
  operations: Operations;
  longPoll: LongPoll;
  databaseKind: 'postgres' | 'pglite';
  limits: RequestLimits;
  connections?: ConnectionCap;
  idempotency: Idempotency;
  logger: Logger;
  /** Which Host and Origin headers are answered (http/origin-guard.ts). */
  guard: OriginGuardOptions;
  /** Tokens and their roles (http/auth.ts); none: every operation is open. */
  tokens: readonly AuthToken[];
  /** The dashboard at /ui (http/ui.ts); absent: not served. */
  ui?: { readOnly: boolean };
  /** Serves GET /metrics and times each request; undefined: metrics are off. */
  metrics?: Metrics;
  /** The OpenAPI validator's own middleware() instead of http/validator.ts (the bench's A/B only). */
  stockValidator?: boolean;
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

const notFound: RequestHandler = (req) => {
  throw new RouteNotFoundError(`no such path in the relay API: ${req.method} ${req.path}`);
};

export async function createApp(options: AppOptions): Promise<Express> {
  const { store, logger, limits } = options;
  const app = express();
  app.disable('x-powered-by');
  // Nothing here is cacheable (next leases jobs; the rest change state): no hash per body.
  app.set('etag', false);
  // Paths are the contract's, exactly: /V1/NEXT or /enqueue/ would otherwise reach a route
  // without going through the checks the intake makes for that operation.
  app.set('case sensitive routing', true);
  app.set('strict routing', true);
  const path = specPath();
  const contract = Contract.load(path);

  // First, so that every answer is logged and timed, refusals of the checks below included.
  app.use(requestLog({ logger, contract, observe: options.metrics && ((...a) => options.metrics!.observeRequest(...a)) }));
  if (options.connections) app.use(options.connections.middleware());
  // Before the body is read: a request a browser was made to send must not reach a route.
  app.use(originGuard(options.guard));
  // Not part of the API: the page is public (its API calls carry the token), so before auth.
  if (options.ui) app.use(dashboard({ readOnly: options.ui.readOnly, tokens: options.tokens.length > 0 }));
  // Before the intake: the body of a request without a valid token is never read.
  if (options.tokens.length > 0) app.use(auth({ tokens: options.tokens, contract }));
  app.use(
    intake({
      contract,
      maxBody: limits.maxBody,
      maxJsonDepth: limits.maxJsonDepth,
      maxBatchSize: limits.maxBatchSize,
      maxKeyBytes: limits.maxKeyBytes,
    }),
  );
  const validation = { apiSpec: path, validateResponses: limits.validateResponses };
  app.use(options.stockValidator ? stockRequestValidator(validation) : await requestValidator(app, validation));
  if (options.metrics) serveMetrics(app, options.metrics);
  routes(app, {
    store,
    operations: options.operations,
    longPoll: options.longPoll,
    databaseKind: options.databaseKind,
    limits,
    idempotency: options.idempotency,
    contract: { yaml: contract.text, document: contract.document },
    events: options.metrics,
    logger,
  });
  app.use(notFound);
  app.use(errorHandler(logger));
  return app;
}
