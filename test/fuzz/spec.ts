import { readFileSync } from 'node:fs';
import yaml from 'js-yaml';
import { specPath } from '../../server/src/http/contract.js';

/**
 * openapi.yaml as the fuzz test reads it: every operation with its method, path, query
 * parameters, request body and responses, `$ref`s resolved. Generators build requests from
 * it and the oracle judges answers by it, so a route or a limit added to the document is
 * fuzzed without touching the test.
 */

export interface Schema {
  /** The component name a `$ref` pointed to (JobId, QueueName, RunAt...), when there was one. */
  $name?: string;
  type?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  enum?: unknown[];
  maxItems?: number;
  items?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean;
}

export interface Parameter {
  name: string;
  required: boolean;
  schema: Schema;
}

export interface ResponseSpec {
  /** Media types of the declared body; empty when the response has none. */
  media: string[];
}

export interface Operation {
  id: string;
  method: string;
  path: string;
  query: Parameter[];
  /** Request headers it declares (Idempotency-Key, traceparent), names as the document writes them. */
  headers: Parameter[];
  /** The parameters of a templated path (`/v1/queues/{queue}`), in the path's order. */
  pathParams: Parameter[];
  body?: { required: boolean; schema: Schema };
  /** By status code ('202') or 'default'. */
  responses: Map<string, ResponseSpec>;
}

type Node = Record<string, any>;

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

function load(): { doc: Node; operations: Operation[] } {
  const doc = yaml.load(readFileSync(specPath(), 'utf8')) as Node;

  const lookup = (ref: string): Node =>
    ref
      .replace(/^#\//, '')
      .split('/')
      .reduce<any>((at, key) => at?.[key.replace(/~1/g, '/').replace(/~0/g, '~')], doc);

  /** A copy of node with every $ref replaced by what it names; names schemas after their component. */
  const resolve = (node: unknown, seen: string[] = []): any => {
    if (Array.isArray(node)) return node.map((n) => resolve(n, seen));
    if (typeof node !== 'object' || node === null) return node;
    const n = node as Node;
    if (typeof n.$ref === 'string') {
      if (seen.includes(n.$ref)) throw new Error(`openapi.yaml: $ref cycle at ${n.$ref}`);
      const target = resolve(lookup(n.$ref), [...seen, n.$ref]);
      const name = /^#\/components\/schemas\/(.+)$/.exec(n.$ref)?.[1];
      return name && typeof target === 'object' && target !== null ? { $name: name, ...target } : target;
    }
    const out: Node = {};
    for (const [k, v] of Object.entries(n)) out[k] = k === 'example' || k === 'examples' ? v : resolve(v, seen);
    return out;
  };

  const operations: Operation[] = [];
  for (const [path, rawItem] of Object.entries(doc.paths as Node)) {
    const item = resolve(rawItem) as Node;
    for (const method of METHODS) {
      const op = item[method] as Node | undefined;
      if (!op) continue;
      const params = [...(item.parameters ?? []), ...(op.parameters ?? [])] as Node[];
      const responses = new Map<string, ResponseSpec>();
      for (const [status, r] of Object.entries((op.responses ?? {}) as Node)) {
        responses.set(status, { media: Object.keys((r as Node).content ?? {}) });
      }
      const body = op.requestBody as Node | undefined;
      operations.push({
        id: String(op.operationId ?? `${method} ${path}`),
        method: method.toUpperCase(),
        path,
        query: params.filter((p) => p.in === 'query').map((p) => ({ name: p.name, required: p.required === true, schema: p.schema ?? {} })),
        headers: params.filter((p) => p.in === 'header').map((p) => ({ name: p.name, required: p.required === true, schema: p.schema ?? {} })),
        pathParams: [...path.matchAll(/\{([^}]+)\}/g)].map(([, name]) => {
          const p = params.find((q) => q.in === 'path' && q.name === name);
          return { name: name!, required: true, schema: p?.schema ?? {} };
        }),
        body: body ? { required: body.required === true, schema: body.content?.['application/json']?.schema ?? {} } : undefined,
        responses,
      });
    }
  }
  return { doc, operations };
}

export const spec = load();

export const operations = spec.operations;

/**
 * The limits openapi.yaml states in prose (its description and JobId's), read from there and
 * not from the server's constants: the document is what a client is promised.
 */
export function documentedLimits(): { maxBody: number; maxJsonDepth: number; maxFieldErrors: number; maxKeyBytes: number } {
  const text = `${spec.doc.info?.description ?? ''}\n${spec.doc.components?.schemas?.JobId?.description ?? ''}`.replace(/\s+/g, ' ');
  const find = (re: RegExp, what: string) => {
    const m = re.exec(text);
    if (!m) throw new Error(`openapi.yaml no longer states ${what} (${re})`);
    return Number(m[1]!.replace(/[ ,]/g, ''));
  };
  return {
    maxBody: find(/request body is at most (\d+) MiB/, 'the body limit') * 1024 * 1024,
    maxJsonDepth: find(/nested at most (\d+) levels/, 'the nesting limit'),
    maxFieldErrors: find(/at most (\d+) entries in `errors`/, 'the error count'),
    maxKeyBytes: find(/at most ([\d ,]+) bytes of UTF-8/, 'the key limit'),
  };
}

export function operation(id: string): Operation {
  const op = operations.find((o) => o.id === id);
  if (!op) throw new Error(`openapi.yaml has no operation ${id}`);
  return op;
}

/**
 * The operation a request reaches. Express matches paths without regard to case or a trailing
 * slash, and the server answers such aliases as the path itself, so they are judged by its
 * contract too.
 */
export function routeOf(method: string, path: string): { op?: Operation; pathKnown: boolean; variant: boolean; params: string[] } {
  // Exactly the document's paths: the server routes neither by case nor past a trailing slash.
  // A template's parameter is one whole segment, as sent (percent-encoded).
  const onPath = operations.filter((o) => o.path === path || (o.pathParams.length > 0 && templateOf(o.path).test(path)));
  const normal = path.toLowerCase().replace(/(.)\/$/, '$1');
  const variant = onPath.length === 0 && operations.some((o) => o.path.toLowerCase() === normal || (o.pathParams.length > 0 && templateOf(o.path).test(normal)));
  const op = onPath.find((o) => o.method === method);
  const params = op && op.pathParams.length > 0 ? templateOf(op.path).exec(path)!.slice(1) : [];
  return { op, pathKnown: onPath.length > 0, variant, params };
}

const templates = new Map<string, RegExp>();
/** A templated path as a pattern with one group per parameter. */
function templateOf(path: string): RegExp {
  let re = templates.get(path);
  if (!re) {
    re = new RegExp(`^${path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{[^}]+\\?\}/g, '([^/]+)')}$`);
    templates.set(path, re);
  }
  return re;
}

/** Whether openapi.yaml declares this status for op, by its own code or by a `default`. */
export function declared(op: Operation, status: number): ResponseSpec | undefined {
  return op.responses.get(String(status)) ?? op.responses.get('default');
}
