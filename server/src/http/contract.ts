import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';

/**
 * What the request intake needs to know about each operation, read from openapi.yaml once at
 * start-up, so that limits checked before validation (array lengths, which routes take a
 * body, which query parameters are numbers) have one source: the contract.
 */

/**
 * openapi.yaml sits at the repository root, or beside package.json in the packed server. The
 * repository's comes first: a copy left beside package.json by packing must not shadow it.
 */
export function specPath(): string {
  for (const rel of ['../../../openapi.yaml', '../../openapi.yaml']) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(path)) return path;
  }
  throw new Error('openapi.yaml not found beside the server package');
}

/** The roles a token can have; `admin` may call every operation. */
export const ROLES = ['producer', 'worker', 'reader', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/**
 * Who may call an operation, from its `security` (or the document's): `open` without a token
 * (`security: []`), `any-role` with any valid token (a requirement with an empty role list),
 * else a token of one of the roles (admin always included).
 */
export type Access = 'open' | 'any-role' | ReadonlySet<Role>;

/** Where a request carries a job's queue or id: query parameters, and top-level body fields. */
export interface KeyFields {
  query: Array<{ name: string; part: 'queue' | 'id' }>;
  /** Fields of the body, or of each element when the body is an array. */
  body: Array<{ name: string; part: 'queue' | 'id' }>;
}

export interface OperationFacts {
  /** Who may call it when the server has tokens. */
  access: Access;
  /** Where the job keys are, for the server's key length limit. */
  keys: KeyFields;
  /** The path as openapi.yaml writes it (`/v1/queues/{queue}`): what logs and metrics name a request by. */
  route: string;
  /** Whether the operation declares a request body at all; without one, any body is ignored. */
  takesBody: boolean;
  /** Whether it must have one. */
  bodyRequired: boolean;
  /** The body's array length limit, when the body is an array with maxItems. */
  maxItems: number | undefined;
  /** Query parameters declared as numbers or integers, with their declared range. */
  numericQuery: Map<string, { min: number; max: number; integer: boolean }>;
}

type Node = Record<string, unknown>;

function isNode(v: unknown): v is Node {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Follows local `$ref`s (`#/components/...`), the only kind openapi.yaml uses. */
function resolver(doc: Node) {
  return function resolve(value: unknown): Node {
    let node = value;
    for (let hops = 0; isNode(node) && typeof node.$ref === 'string'; hops++) {
      if (hops > 32) throw new Error(`openapi.yaml: $ref cycle at ${node.$ref}`);
      node = node.$ref
        .replace(/^#\//, '')
        .split('/')
        .reduce<unknown>((at, key) => (isNode(at) ? at[key.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined), doc);
    }
    return isNode(node) ? node : {};
  };
}

const KEY_SCHEMAS: Record<string, 'queue' | 'id'> = {
  '#/components/schemas/QueueName': 'queue',
  '#/components/schemas/JobId': 'id',
};

/** The part of a job key a parameter or property schema is, by the schema it refers to. */
function keyPart(schema: unknown): 'queue' | 'id' | undefined {
  return isNode(schema) && typeof schema.$ref === 'string' ? KEY_SCHEMAS[schema.$ref] : undefined;
}

/** Who may call an operation with this security (OpenAPI: any one requirement suffices). */
function accessOf(security: unknown, where: string): Access {
  if (!Array.isArray(security)) throw new Error(`openapi.yaml: ${where}: security must be a list`);
  if (security.length === 0) return 'open';
  const roles = new Set<Role>(['admin']);
  for (const requirement of security) {
    if (!isNode(requirement)) throw new Error(`openapi.yaml: ${where}: a security requirement must be an object`);
    const entries = Object.entries(requirement);
    if (entries.length === 0) return 'open';
    for (const [scheme, names] of entries) {
      if (scheme !== 'bearerAuth') throw new Error(`openapi.yaml: ${where}: unknown security scheme ${JSON.stringify(scheme)}`);
      if (!Array.isArray(names)) throw new Error(`openapi.yaml: ${where}: the roles of ${scheme} must be a list`);
      if (names.length === 0) return 'any-role';
      for (const name of names) {
        if (!(ROLES as readonly unknown[]).includes(name)) throw new Error(`openapi.yaml: ${where}: unknown role ${JSON.stringify(name)} (one of ${ROLES.join(', ')})`);
        roles.add(name as Role);
      }
    }
  }
  return roles;
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

export class Contract {
  private readonly routes: Array<{ pattern: RegExp; method: string; facts: OperationFacts }> = [];
  private readonly exact = new Map<string, OperationFacts>();

  constructor(
    readonly document: Node,
    /** The document as written (YAML), when it was read from a file. */
    readonly text = '',
  ) {
    const resolve = resolver(document);
    const paths = isNode(document.paths) ? document.paths : {};
    // Without a document-wide requirement an undeclared operation would be open; none is.
    const fallback = document.security ?? [{ bearerAuth: ['admin'] }];
    for (const [path, item] of Object.entries(paths)) {
      if (!isNode(item)) continue;
      for (const method of METHODS) {
        const operation = item[method];
        if (!isNode(operation)) continue;
        const upper = method.toUpperCase();
        const access = accessOf(operation.security ?? fallback, `${upper} ${path}`);
        const facts = this.factsOf(path, operation, Array.isArray(item.parameters) ? item.parameters : [], resolve, access);
        if (path.includes('{')) {
          const source = path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{[^}]+\\?\}/g, '[^/]+');
          this.routes.push({ pattern: new RegExp(`^${source}$`), method: upper, facts });
        } else {
          this.exact.set(`${upper} ${path}`, facts);
        }
      }
    }
  }

  static load(path = specPath()): Contract {
    const text = readFileSync(path, 'utf8');
    return new Contract(yaml.load(text) as Node, text);
  }

  /** Whether the contract has the path, for any method. */
  hasPath(path: string): boolean {
    for (const key of this.exact.keys()) if (key.slice(key.indexOf(' ') + 1) === path) return true;
    return this.routes.some((r) => r.pattern.test(path));
  }

  /** The facts of the operation at method and path, or undefined when the contract has none. */
  operation(method: string, path: string): OperationFacts | undefined {
    const hit = this.exact.get(`${method} ${path}`);
    if (hit) return hit;
    for (const route of this.routes) if (route.method === method && route.pattern.test(path)) return route.facts;
    return undefined;
  }

  /** Whether every operation at the path is open (HEAD /health is then a 405 without a token, as with none). */
  openPath(path: string): boolean {
    let found = false;
    for (const [key, facts] of this.exact) {
      if (key.slice(key.indexOf(' ') + 1) !== path) continue;
      if (facts.access !== 'open') return false;
      found = true;
    }
    return found && !this.routes.some((r) => r.pattern.test(path));
  }

  private factsOf(route: string, operation: Node, shared: unknown[], resolve: (v: unknown) => Node, access: Access): OperationFacts {
    const numericQuery = new Map<string, { min: number; max: number; integer: boolean }>();
    const keys: KeyFields = { query: [], body: [] };
    for (const p of [...shared, ...(Array.isArray(operation.parameters) ? operation.parameters : [])]) {
      const param = resolve(p);
      if (param.in !== 'query') continue;
      const part = keyPart(param.schema);
      if (part) keys.query.push({ name: String(param.name), part });
      const schema = resolve(param.schema);
      if (schema.type !== 'number' && schema.type !== 'integer') continue;
      numericQuery.set(String(param.name), {
        min: typeof schema.minimum === 'number' ? schema.minimum : -Number.MAX_VALUE,
        max: typeof schema.maximum === 'number' ? schema.maximum : Number.MAX_VALUE,
        integer: schema.type === 'integer',
      });
    }
    const body = operation.requestBody === undefined ? undefined : resolve(operation.requestBody);
    const content = body && isNode(body.content) ? body.content : {};
    const media = resolve(content['application/json']);
    const schema = resolve(media.schema);
    const element = schema.type === 'array' ? resolve(schema.items) : schema;
    for (const [name, property] of Object.entries(isNode(element.properties) ? element.properties : {})) {
      const part = keyPart(property);
      if (part) keys.body.push({ name, part });
    }
    return {
      access,
      keys,
      route,
      takesBody: body !== undefined,
      bodyRequired: body?.required === true,
      maxItems: schema.type === 'array' && typeof schema.maxItems === 'number' ? schema.maxItems : undefined,
      numericQuery,
    };
  }
}
