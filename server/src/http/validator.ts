import { createRequire } from 'node:module';
import * as OpenApiValidator from 'express-openapi-validator';
import type { Express, NextFunction, Request, RequestHandler, Response } from 'express';
import { cacheValidatorRouteMatchers } from '../route-cache.js';
import { parseQueryOnce } from './query.js';

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
 * - for an operation whose parameters need no reshaping (primitive values, no JSON content,
 *   checked at load), the per-request preparation of its request validator: a URL parse, a
 *   walk over the operation's parameters re-reading their schemas, sets and maps of the
 *   query's names. Such a request whose query is plain (only declared names, each once and
 *   not empty, no character the validator checks for encoding) goes straight to the
 *   validator's compiled schemas for that operation and media type, and a failure is turned
 *   into its error as the validator turns it; any other request of it goes through the
 *   validator's whole request stage.
 * - Express's parse of the query string on each read of `req.query` (http/query.ts).
 * The schemas, the order of the checks and the errors are the validator's (errors.ts maps
 * them to problem+json).
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

type Compiled = ((data: unknown) => boolean) & { errors?: unknown[] | null };
interface RequestStage {
  ajv: { getSchema(key: string): Compiled | undefined; errorsText(errors: unknown[], o: object): string };
  ajvBody: { getSchema(key: string): Compiled | undefined };
  middlewareCache: Record<string, unknown>;
  buildMiddleware(path: string, schema: unknown, contentType: unknown, key: string): unknown;
  validate(req: Request, res: Response, next: NextFunction): void;
}
/** An operation's compiled schemas for one request media type: the validator's own. */
interface Direct {
  general: Compiled;
  body: Compiled;
}
/** What a request of an operation without parameters in its path needs. */
interface Exact {
  metadata: Readonly<Metadata>;
  method: string;
  /** Whether query and direct are known: on the operation's first request, when the validator too builds its stage for it. */
  prepared: boolean;
  /** Its query parameters' names, when its requests can skip the validator's preparation. */
  query?: ReadonlySet<string>;
  /** By Content-Type as the intake leaves it: none, or exactly application/json. */
  direct?: { none?: Direct; json?: Direct };
}

/**
 * The characters the validator refuses unencoded in a query value (its RESERVED_CHARS) but
 * '&' and '=', which its split of the query leaves in no value: a query without any of these
 * passes that check whatever its parameters.
 */
const RESERVED_IN_VALUES = /[:/?#[\]@!$'()*+,;]/;
const PRIMITIVE = new Set(['string', 'integer', 'number', 'boolean']);

const METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);

type StockOptions = Parameters<typeof OpenApiValidator.middleware>[0];

/** The options the server runs the validator with, composed or as the library installs it. */
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
 * validator's path parameter handlers, as its first request would have installed them, and
 * requests whose query is parsed once (http/query.ts).
 */
export async function requestValidator(app: Express, options: ValidatorOptions): Promise<RequestHandler> {
  cacheValidatorRouteMatchers();
  parseQueryOnce(app);
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
  // What validator.requestValidationMiddleware() builds, kept at hand for its compiled schemas.
  const { RequestValidator } = load('middlewares/openapi.request.validator.js') as {
    RequestValidator: new (apiDoc: unknown, options: unknown) => RequestStage;
  };
  const requestStage = new RequestValidator(context.apiDoc, (validator.ajvOpts as { request?: unknown }).request);
  const request: RequestHandler = (req, res, next) => requestStage.validate(req, res, next);
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
  const direct = directPlans(requestStage, context.apiDoc);
  const exact = new Map<string, Exact>();
  for (const route of spec.routes) {
    if (route.pathParams.length > 0 || route.expressRoute.includes(':')) continue;
    if (matchers.find((m) => m.regexp.test(route.expressRoute))?.route !== route.expressRoute) continue;
    const methods = context.expressRouteMap[route.expressRoute]!;
    const pathKey = methods._openApiRoute.substring(methods.basePath.length);
    const method = route.method.toLowerCase();
    const schema = context.apiDoc.paths[pathKey]?.[method];
    if (!schema) continue;
    const upper = route.method.toUpperCase();
    exact.set(`${upper} ${route.expressRoute}`, {
      metadata: Object.freeze({
        expressRoute: route.expressRoute,
        openApiRoute: methods._openApiRoute,
        pathParams: Object.freeze({}),
        schema,
        serial: context.serial,
        ...(responseApiDoc ? { _responseSchema: (responseApiDoc as LoadedSpec['apiDoc']).paths[pathKey]?.[method] } : {}),
      }),
      method: upper,
      prepared: false,
      query: undefined,
      direct: undefined,
    });
  }

  const util = load('middlewares/util.js') as unknown as Omit<ErrorHelpers, 'BadRequest'>;
  const { BadRequest } = load('framework/types.js') as Pick<ErrorHelpers, 'BadRequest'>;
  const errors: ErrorHelpers = { augmentAjvErrors: util.augmentAjvErrors, ajvErrorsToValidatorError: util.ajvErrorsToValidatorError, BadRequest };

  return (req: Request, res: Response, next: NextFunction) => {
    try {
      // The path the validator matches: originalUrl's, up to the query.
      const url = req.originalUrl;
      const q = url.indexOf('?');
      const found = exact.get(`${req.method} ${q < 0 ? url : url.slice(0, q)}`);
      if (found) {
        if (!found.prepared) {
          Object.assign(found, direct(found.method, found.metadata.expressRoute, found.metadata.schema as Node));
          found.prepared = true;
        }
        // One object per operation: the validator's stages only read it (frozen, a write would throw).
        (req as Request & { openapi: Metadata }).openapi = found.metadata;
        req.params = {};
        if (!validateDirectly(found, req, q < 0 ? '' : url.slice(q + 1), requestStage, errors)) runNow(request, req, res);
      } else {
        runNow(metadata, req, res);
        runNow(request, req, res);
      }
      if (response) runNow(response, req, res);
    } catch (err) {
      return next(err);
    }
    next();
  };
}

interface ErrorHelpers {
  augmentAjvErrors(errors: unknown[]): unknown[];
  ajvErrorsToValidatorError(status: number, errors: unknown[]): { errors: unknown[] };
  BadRequest: new (o: { path: string; message: string }) => Error & { errors?: unknown[] };
}

/**
 * For each operation (method and express route), its query parameters' names and its
 * compiled schemas per media type, when its requests can skip the validator's preparation:
 * when that preparation (its parameter mutator) would leave a plain query as it is, because
 * no parameter has JSON content, an object, array or composed schema, and no body schema
 * needs a discriminator. Built as the validator builds them on an operation's first request.
 */
function directPlans(stage: RequestStage, apiDoc: LoadedSpec['apiDoc']): (method: string, route: string, schema: Node) => Pick<Exact, 'query' | 'direct'> {
  const { dereferenceParameter, normalizeParameter } = load('middlewares/parsers/util.js') as {
    dereferenceParameter(apiDoc: unknown, p: unknown): Node;
    normalizeParameter(ajv: unknown, p: unknown): { name: string; schema: Node | undefined };
  };
  const { ContentType } = load('middlewares/util.js') as { ContentType: { fromString(type?: string): { normalize(): string | undefined } } };
  const discriminators = JSON.stringify(apiDoc).includes('"discriminator"');
  return (method, route, schema) => {
    if (discriminators) return {};
    const query = new Set<string>();
    for (const p of (schema.parameters as unknown[] | undefined) ?? []) {
      const parameter = dereferenceParameter(apiDoc, p);
      const { name, schema: value } = normalizeParameter(stage.ajv, parameter);
      if (parameter.content !== undefined || !value || value.$ref !== undefined) return {};
      if (!PRIMITIVE.has(value.type as string) || value.allOf || value.oneOf || value.anyOf) return {};
      if (parameter.in === 'query') query.add(name);
      else if (parameter.in !== 'header') return {};
    }
    const plan = (contentType: string | undefined): Direct | undefined => {
      const type = ContentType.fromString(contentType);
      const key = `${method}-${route}-${type.normalize() ?? 'not_provided'}`;
      try {
        stage.middlewareCache[key] ??= stage.buildMiddleware(route, schema, type, key);
      } catch {
        // A media type the operation refuses (a body route without one): its requests get
        // that error from the validator's own stage.
        return undefined;
      }
      const general = stage.ajv.getSchema(key);
      const body = stage.ajvBody.getSchema(key);
      return general && body ? { general, body } : undefined;
    };
    return { query, direct: { none: plan(undefined), json: plan('application/json') } };
  };
}

/**
 * Validates a request of an operation with a direct plan as the validator's request stage
 * would, when its query is plain; false when it is not (the validator's stage then runs).
 * Throws the validator's error for a request its schemas refuse.
 */
function validateDirectly(found: Exact, req: Request, rawQuery: string, stage: RequestStage, helpers: ErrorHelpers): boolean {
  const contentType = req.headers['content-type'];
  const direct = contentType === undefined ? found.direct?.none : contentType === 'application/json' ? found.direct?.json : undefined;
  if (!direct || RESERVED_IN_VALUES.test(rawQuery)) return false;
  const query = req.query as Record<string, unknown>;
  for (const name in query) {
    const value = query[name];
    // Undeclared (or bracketed) names, repeated and empty values: the validator's stage says what they are.
    if (!found.query!.has(name) || typeof value !== 'string' || value === '') return false;
  }
  // The validator's request stage would make req.query an own property holding this object,
  // which its schemas coerce in place; with parseQueryOnce() every read answers that object.
  const cookies = (req as { cookies?: object }).cookies;
  const data = {
    query,
    headers: req.headers,
    params: req.params,
    cookies: cookies ? { ...cookies, ...(req as { signedCookies?: object }).signedCookies } : undefined,
    body: req.body as unknown,
  };
  const valid = direct.general(data);
  const validBody = direct.body(data);
  if (valid && validBody) return true;
  const errors = helpers.augmentAjvErrors([...(direct.general.errors ?? []), ...(direct.body.errors ?? [])]);
  const error = new helpers.BadRequest({ path: req.path, message: stage.ajv.errorsText(errors, { dataVar: 'request' }) });
  error.errors = helpers.ajvErrorsToValidatorError(400, errors).errors;
  throw error;
}

/**
 * The validator as its `middleware()` installs it, stage by stage: what the server ran before
 * requestValidator(), kept for the bench's A/B (RELAY_BENCH_DISABLE=cheap-validation).
 */
export function stockRequestValidator(options: ValidatorOptions): ReturnType<typeof OpenApiValidator.middleware> {
  cacheValidatorRouteMatchers();
  return OpenApiValidator.middleware(validatorOptions(options));
}
