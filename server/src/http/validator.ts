import { createRequire } from 'node:module';
import * as OpenApiValidator from 'express-openapi-validator';
import type { Express, NextFunction, Request, RequestHandler, Response } from 'express';
import { cacheValidatorRouteMatchers } from '../route-cache.js';

/**
 * express-openapi-validator, composed from its own parts (its spec loader, schema preprocessor,
 * route metadata, request and response validators, with the options the server always gave it)
 * into one synchronous middleware, loaded before the server listens.
 *
 * What its `middleware()` costs every request, and this does not:
 * - six stages (path parameters, metadata, security, multipart, request, response), each an
 *   Express layer and each waiting on the loaded spec with a promise and a microtask hop;
 *   the security stage does nothing with `validateSecurity: false`, and the multipart stage
 *   nothing for a contract without multipart bodies (checked at load);
 * - the route lookup of its metadata stage: for each request it scans the routes in order,
 *   building objects, strings and a matcher per route. A path without parameters (every busy
 *   route) is here one Map lookup, to the route the scan would have found first (checked at
 *   load); a path with parameters still goes through the validator's own lookup.
 * The request and response validation themselves are the validator's, unchanged: the same
 * compiled schemas and the same errors (errors.ts maps them).
 */

const require = createRequire(import.meta.url);
const root = require.resolve('express-openapi-validator');
const load = (path: string) => createRequire(root)(`./${path}`) as Record<string, unknown>;

export interface ValidatorOptions {
  /** openapi.yaml's path. */
  apiSpec: string;
  /** Validate every response too (the test suite; off in production unless asked for). */
  validateResponses: boolean;
}

/** The validator's view of a request's operation (its `req.openapi`). */
interface Metadata {
  expressRoute: string;
  openApiRoute: string;
  pathParams: Record<string, string>;
  schema: unknown;
  serial: number;
  _responseSchema?: unknown;
}

type Node = Record<string, unknown>;
interface LoadedSpec {
  apiDoc: { paths: Record<string, Record<string, unknown>>; components?: Node };
  basePaths: string[];
  routes: Array<{ basePath: string; expressRoute: string; openApiRoute: string; method: string; pathParams: string[] }>;
  serial: number;
}
interface Context {
  apiDoc: LoadedSpec['apiDoc'];
  serial: number;
  expressRouteMap: Record<string, { basePath: string; _openApiRoute: string }>;
}
interface Validator {
  options: Record<string, unknown> & { apiSpec: unknown; validateApiSpec: unknown; $refParser: unknown; ignorePaths: unknown; ignoreUndocumented: unknown; useRequestUrl: unknown; validateResponses: unknown };
  ajvOpts: { preprocessor: unknown };
  installPathParams(app: Express, context: Context): void;
  metadataMiddleware(context: Context, responseApiDoc: unknown): RequestHandler;
  requestValidationMiddleware(apiDoc: unknown): RequestHandler;
  responseValidationMiddleware(apiDoc: unknown, serial: number): RequestHandler;
}

const METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);

/** The options the server runs the validator with; `validateSecurity: false`: http/auth.ts checks tokens. */
type StockOptions = Parameters<typeof OpenApiValidator.middleware>[0];

function validatorOptions(options: ValidatorOptions): StockOptions {
  return {
    apiSpec: options.apiSpec,
    // allErrors off: the validator stops at the first problem, so a large bad request costs
    // no more than a good one (with every error collected, cost and answer grew with it).
    validateRequests: { allowUnknownQueryParameters: false, coerceTypes: false, allErrors: false },
    validateResponses: options.validateResponses ? { allErrors: true } : false,
    validateFormats: true,
    // http/auth.ts checks tokens and roles, before the body is read; the validator would
    // only refuse every secured operation for want of a handler.
    validateSecurity: false,
  };
}

/** Runs a middleware that finishes synchronously; its error, or its not finishing, is thrown. */
function runNow(stage: RequestHandler, req: Request, res: Response): void {
  let done = false;
  void stage(req, res, (err?: unknown) => {
    if (err) throw err;
    done = true;
  });
  if (!done) throw new Error('express-openapi-validator: a stage did not finish synchronously');
}

/**
 * Loads openapi.yaml as express-openapi-validator does and answers the middleware that
 * validates each request (and, when asked, each response) against it. `app` gets the
 * validator's path parameter handlers, as its first request would have installed them.
 */
export async function requestValidator(app: Express, options: ValidatorOptions): Promise<RequestHandler> {
  cacheValidatorRouteMatchers();
  const { OpenApiValidator: Composed } = load('openapi.validator.js') as { OpenApiValidator: new (o: StockOptions) => Validator };
  const { OpenApiSpecLoader } = load('framework/openapi.spec.loader.js') as { OpenApiSpecLoader: new (o: Record<string, unknown>) => { load(): Promise<LoadedSpec> } };
  const { OpenApiContext } = load('framework/openapi.context.js') as {
    OpenApiContext: new (spec: LoadedSpec, ignorePaths: unknown, ignoreUndocumented: unknown, useRequestUrl: unknown) => Context;
  };
  const { SchemaPreprocessor } = load('middlewares/parsers/schema.preprocessor.js') as {
    SchemaPreprocessor: new (apiDoc: unknown, ajvOptions: unknown, responses: unknown) => { preProcess(): { apiDocRes: unknown } };
  };
  const { pathToRegexp } = createRequire(root)('path-to-regexp') as { pathToRegexp: (path: string, o: object) => { regexp: RegExp } };

  // As the validator's middleware() and its first request would: the same steps, in order.
  const validator = new Composed(validatorOptions(options));
  const o = validator.options;
  const spec = await new OpenApiSpecLoader({ apiDoc: o.apiSpec, validateApiSpec: o.validateApiSpec, $refParser: o.$refParser }).load();
  const responseApiDoc = new SchemaPreprocessor(spec.apiDoc, validator.ajvOpts.preprocessor, o.validateResponses).preProcess().apiDocRes;
  const context = new OpenApiContext(spec, o.ignorePaths, o.ignoreUndocumented, o.useRequestUrl);
  validator.installPathParams(app, context);
  const metadata = validator.metadataMiddleware(context, responseApiDoc);
  const request = validator.requestValidationMiddleware(context.apiDoc);
  const response = o.validateResponses ? validator.responseValidationMiddleware(responseApiDoc, context.serial) : undefined;

  for (const [path, item] of Object.entries(spec.apiDoc.paths)) {
    for (const method of Object.keys(item)) {
      const content = METHODS.has(method) ? ((item[method] as Node).requestBody as Node | undefined)?.content : undefined;
      if (content && typeof content === 'object' && 'multipart/form-data' in content) {
        throw new Error(`openapi.yaml: ${method.toUpperCase()} ${path} takes multipart/form-data, which the server's validator is not set up for`);
      }
    }
  }

  // The operations of paths without parameters, by "METHOD path", each with what the
  // validator's lookup would set. A path is kept only when that lookup (routes in its order,
  // matched as the app matches them) would find its own route first.
  const settings = { sensitive: app.enabled('case sensitive routing'), strict: app.enabled('strict routing') };
  const matchers = Object.keys(context.expressRouteMap).map((route) => ({ route, regexp: pathToRegexp(route, settings).regexp }));
  const exact = new Map<string, Omit<Metadata, 'pathParams'>>();
  for (const route of spec.routes) {
    if (route.pathParams.length > 0 || route.expressRoute.includes(':')) continue;
    if (matchers.find((m) => m.regexp.test(route.expressRoute))?.route !== route.expressRoute) continue;
    const methods = context.expressRouteMap[route.expressRoute]!;
    const pathKey = methods._openApiRoute.substring(methods.basePath.length);
    const method = route.method.toLowerCase();
    const schema = context.apiDoc.paths[pathKey]?.[method];
    if (!schema) continue;
    exact.set(`${route.method.toUpperCase()} ${route.expressRoute}`, {
      expressRoute: route.expressRoute,
      openApiRoute: methods._openApiRoute,
      schema,
      serial: context.serial,
      ...(responseApiDoc ? { _responseSchema: (responseApiDoc as LoadedSpec['apiDoc']).paths[pathKey]?.[method] } : {}),
    });
  }

  return (req: Request, res: Response, next: NextFunction) => {
    try {
      // The path the validator matches: originalUrl's, up to the query.
      const url = req.originalUrl;
      const q = url.indexOf('?');
      const found = exact.get(`${req.method} ${q < 0 ? url : url.slice(0, q)}`);
      if (found) {
        const pathParams = {};
        (req as Request & { openapi: Metadata }).openapi = { ...found, pathParams };
        req.params = pathParams;
      } else {
        runNow(metadata, req, res);
      }
      runNow(request, req, res);
      if (response) runNow(response, req, res);
    } catch (err) {
      return next(err);
    }
    next();
  };
}

/**
 * The validator as its `middleware()` installs it, stage by stage: what the server ran before
 * requestValidator(), kept for the bench's A/B (RELAY_BENCH_DISABLE=cheap-validation).
 */
export function stockRequestValidator(options: ValidatorOptions): ReturnType<typeof OpenApiValidator.middleware> {
  cacheValidatorRouteMatchers();
  return OpenApiValidator.middleware(validatorOptions(options));
}
