import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';
import { BadRequestError, MethodNotAllowedError, PayloadTooLargeError, RouteNotFoundError, UnsupportedMediaTypeError, type FieldError } from '../errors.js';
import type { Contract, OperationFacts } from './contract.js';
import { checkJsonValue } from './json-limits.js';
import { checkBodyKeys, checkQueryKeys } from './key-limits.js';

/**
 * Everything a request goes through before the OpenAPI validator sees it, each check in time
 * bounded by the request's size, never by what the validator would do with it:
 *
 * - a target that is not a path (`*`) is a 404, like any path the API does not have;
 * - a number in the query string must be finite (`Infinity` and `1e309` parse as numbers and
 *   would pass a `maximum`);
 * - a route without a request body in openapi.yaml ignores any body sent to it, unread;
 * - a body is read up to the limit (413), in any Content-Encoding but identity refused (415:
 *   nothing here needs compressed bodies, and inflating them multiplies what a request costs);
 * - an empty body is no body, whatever Content-Type and Content-Length say (relay clients send
 *   `Content-Type: application/json` with nothing after it);
 * - a non-empty body must be `application/json` in UTF-8 (415), and the validator is then
 *   shown exactly `application/json`: it keeps compiled schemas per Content-Type string, so
 *   letting each request name its own would grow the server's memory without bound;
 * - the JSON must parse, stay within the nesting depth, and hold nothing the database refuses
 *   (400); an array body longer than its `maxItems` is refused before any element is looked at.
 */

export interface IntakeOptions {
  contract: Contract;
  /** Largest body in bytes. */
  maxBody: number;
  /** Deepest nesting of a JSON body (the outermost value is level 1). */
  maxJsonDepth: number;
  /** The most items of an array body, below its `maxItems` in the contract. */
  maxBatchSize: number;
  /** The most bytes of a job's queue and id together (key-limits.ts). */
  maxKeyBytes: number;
}

const NUMBER = /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/;

function checkNumericQuery(query: Record<string, unknown>, facts: OperationFacts): void {
  const errors: FieldError[] = [];
  for (const [name, range] of facts.numericQuery) {
    const value = query[name];
    if (typeof value !== 'string') continue; // absent, or repeated (the validator names that)
    const n = Number(value);
    if (!NUMBER.test(value) || !Number.isFinite(n)) {
      errors.push({ path: `/query/${name}`, message: `must be a finite number from ${range.min} to ${range.max}` });
    }
  }
  if (errors.length > 0) throw new BadRequestError('the request does not match the API', errors);
}

/** `application/json`, optionally with `charset=utf-8`; anything else is refused. */
function acceptsMediaType(header: string | undefined): boolean {
  if (header === undefined) return false;
  const [type, ...params] = header.split(';');
  if (type!.trim().toLowerCase() !== 'application/json') return false;
  return params.every((p) => {
    const [name, value = ''] = p.split('=');
    const key = name!.trim().toLowerCase();
    if (key === '') return true;
    return key === 'charset' && value.trim().replace(/^"|"$/g, '').toLowerCase() === 'utf-8';
  });
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        // What is left of the body is not read: the connection closes after the answer.
        req.pause();
        reject(new PayloadTooLargeError(`the request body is over the limit of ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(new BadRequestError(`the request body could not be read: ${err.message}`));
    };
    const onAborted = () => onError(new Error('the client aborted the request'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

function parseJson(bytes: Buffer): unknown {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new BadRequestError('the request body is not valid UTF-8', [{ path: '/body', message: 'must be UTF-8 text' }]);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BadRequestError('the request body is not valid JSON', [{ path: '/body', message: (err as Error).message }]);
  }
}

export function intake(options: IntakeOptions): RequestHandler {
  const { contract, maxBody, maxJsonDepth, maxBatchSize, maxKeyBytes } = options;
  return (req, res, next) => {
    if (!req.url.startsWith('/')) throw new RouteNotFoundError(`the request target ${JSON.stringify(req.url.slice(0, 100))} is not a path of the relay API`);
    const facts = contract.operation(req.method, req.path);
    // No such operation: nothing is read. Paths are the contract's exactly (no case folding, no
    // trailing slash), the same rule for the routes and for the checks here.
    if (!facts) {
      if (contract.hasPath(req.path)) throw new MethodNotAllowedError(`${req.method} is not a method of ${req.path}`);
      throw new RouteNotFoundError(`no such path in the relay API: ${req.method} ${req.path}`);
    }
    const query = req.query as Record<string, unknown>;
    checkNumericQuery(query, facts);
    checkQueryKeys(query, facts.keys, maxKeyBytes);
    if (!facts.takesBody) {
      req.body = undefined;
      // Ignored like the body: the validator would keep a compiled schema per Content-Type string.
      delete req.headers['content-type'];
      return next();
    }
    const encoding = req.headers['content-encoding']?.trim().toLowerCase();
    if (encoding && encoding !== 'identity') {
      res.set('Connection', 'close');
      throw new UnsupportedMediaTypeError(`Content-Encoding ${JSON.stringify(encoding)} is not accepted: send the body uncompressed`);
    }
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > maxBody) {
      res.set('Connection', 'close');
      throw new PayloadTooLargeError(`the request body is over the limit of ${maxBody} bytes`);
    }
    readBody(req, maxBody).then(
      (bytes) => {
        if (bytes.length === 0) {
          if (facts.bodyRequired) throw new BadRequestError('this request needs a JSON body', [{ path: '/body', message: 'is required' }]);
          req.body = undefined;
          // Whatever it said, the validator is shown the one media type the contract declares:
          // a missing body is then judged by whether the operation requires one.
          req.headers['content-type'] = 'application/json';
          return next();
        }
        if (!acceptsMediaType(req.headers['content-type'])) {
          throw new UnsupportedMediaTypeError(
            `the request body must be application/json (UTF-8), not ${JSON.stringify(req.headers['content-type'] ?? 'unnamed')}`,
          );
        }
        req.headers['content-type'] = 'application/json';
        const body = parseJson(bytes);
        const maxItems = facts.maxItems === undefined ? undefined : Math.min(facts.maxItems, maxBatchSize);
        if (maxItems !== undefined && Array.isArray(body) && body.length > maxItems) {
          throw new BadRequestError(`the request carries ${body.length} items; at most ${maxItems} are accepted`, [
            { path: '/body', message: `must NOT have more than ${maxItems} items` },
          ]);
        }
        checkBodyKeys(body, facts.keys, maxKeyBytes);
        checkJsonValue(body, maxJsonDepth);
        req.body = body;
        next();
      },
    ).catch((err: unknown) => {
      if (err instanceof PayloadTooLargeError) res.set('Connection', 'close');
      next(err);
    });
  };
}
