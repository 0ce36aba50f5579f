import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import yaml from 'js-yaml';

/**
 * openapi.yaml as the kit judges answers by it: for each operation, the statuses it declares
 * and, for each, the media types, body schemas and headers. A response is held to what the
 * document says and nothing else, so the kit judges any implementation of the contract.
 */

// ajv-formats is CommonJS with a default export that TypeScript's NodeNext sees one level down.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule) as unknown as (ajv: Ajv2020) => Ajv2020;

/** The copy of openapi.yaml shipped in this package, beside dist/. */
export const defaultSpecPath = (): string => fileURLToPath(new URL('../openapi.yaml', import.meta.url));

const DOC_ID = 'urn:relay-conformance:openapi';
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

type Node = Record<string, unknown>;

const isNode = (v: unknown): v is Node => typeof v === 'object' && v !== null && !Array.isArray(v);

interface DeclaredResponse {
  /** Media type (lowercase) → body validator; undefined when the media type has no schema. */
  media: Map<string, ValidateFunction | undefined>;
  /** Header name (lowercase) → validator of its value, and the schema's type (to read the text). */
  headers: Map<string, { validate: ValidateFunction | undefined; type: string | undefined }>;
}

export interface Operation {
  id: string;
  method: string;
  /** As the document writes it, with `{name}` templates. */
  path: string;
  /** By status code ('202') or 'default'. */
  responses: Map<string, DeclaredResponse>;
}

/** What the kit received, as the validator needs it. */
export interface Answer {
  method: string;
  status: number;
  headers: Headers;
  text: string;
}

const escapePointer = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

export class Contract {
  readonly operations = new Map<string, Operation>();
  readonly version: string;
  readonly #problem: ValidateFunction;
  readonly #ajv: Ajv2020;
  readonly #doc: Node;

  constructor(readonly specPath: string = defaultSpecPath()) {
    const doc = yaml.load(readFileSync(specPath, 'utf8'));
    if (!isNode(doc) || !isNode(doc.paths)) throw new Error(`${specPath} is not an OpenAPI document`);
    this.#doc = doc;
    this.version = String((doc.info as Node | undefined)?.version ?? '');
    // OpenAPI 3.1 schemas are JSON Schema 2020-12; `example` and the like are annotations.
    this.#ajv = new Ajv2020({ strict: false, allErrors: false, validateFormats: true });
    addFormats(this.#ajv);
    this.#ajv.addSchema(doc, DOC_ID);
    const problem = this.#ajv.getSchema(`${DOC_ID}#/components/schemas/Problem`);
    if (!problem) throw new Error(`${specPath} has no Problem schema`);
    this.#problem = problem;

    for (const [path, item] of Object.entries(doc.paths)) {
      if (!isNode(item)) continue;
      for (const method of METHODS) {
        const op = item[method];
        if (!isNode(op) || typeof op.operationId !== 'string') continue;
        const responses = new Map<string, DeclaredResponse>();
        const base = `/paths/${escapePointer(path)}/${method}/responses`;
        for (const [status, raw] of Object.entries((op.responses ?? {}) as Node)) {
          responses.set(status, this.#response(raw, `${base}/${escapePointer(status)}`));
        }
        this.operations.set(op.operationId, { id: op.operationId, method: method.toUpperCase(), path, responses });
      }
    }
  }

  operation(id: string): Operation {
    const op = this.operations.get(id);
    if (!op) throw new Error(`${this.specPath} has no operation ${id}`);
    return op;
  }

  /** Follows `$ref`s (local ones, the only kind the document uses), keeping track of where the node is. */
  #follow(node: unknown, pointer: string): { node: Node; pointer: string } {
    for (let hops = 0; isNode(node) && typeof node.$ref === 'string'; hops++) {
      if (hops > 32 || !node.$ref.startsWith('#/')) throw new Error(`${this.specPath}: cannot follow $ref ${node.$ref}`);
      pointer = node.$ref.slice(1);
      node = pointer
        .slice(1)
        .split('/')
        .reduce<unknown>((at, key) => (isNode(at) ? at[key.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined), this.#doc);
    }
    if (!isNode(node)) throw new Error(`${this.specPath}: nothing at ${pointer}`);
    return { node, pointer };
  }

  #schema(pointer: string): ValidateFunction {
    const validate = this.#ajv.getSchema(`${DOC_ID}#${pointer}`);
    if (!validate) throw new Error(`${this.specPath}: no schema at ${pointer}`);
    return validate;
  }

  #response(raw: unknown, at: string): DeclaredResponse {
    const { node, pointer } = this.#follow(raw, at);
    const media = new Map<string, ValidateFunction | undefined>();
    for (const [type, content] of Object.entries((node.content ?? {}) as Node)) {
      const hasSchema = isNode(content) && content.schema !== undefined;
      media.set(type.toLowerCase(), hasSchema ? this.#schema(`${pointer}/content/${escapePointer(type)}/schema`) : undefined);
    }
    const headers = new Map<string, { validate: ValidateFunction | undefined; type: string | undefined }>();
    for (const [name, h] of Object.entries((node.headers ?? {}) as Node)) {
      const header = this.#follow(h, `${pointer}/headers/${escapePointer(name)}`);
      const schema = isNode(header.node.schema) ? header.node.schema : undefined;
      headers.set(name.toLowerCase(), {
        validate: schema ? this.#schema(`${header.pointer}/schema`) : undefined,
        type: typeof schema?.type === 'string' ? schema.type : undefined,
      });
    }
    return { media, headers };
  }

  /**
   * Every way the answer breaks the document, for the operation the request was meant for
   * (undefined: a path or method the document does not have, whose answers must be problems).
   * Empty when the answer keeps it.
   */
  check(operationId: string | undefined, answer: Answer): string[] {
    const problems: string[] = [];
    const { status, headers, text } = answer;
    const type = headers.get('content-type');
    const media = type?.split(';')[0]!.trim().toLowerCase();
    const noBody = answer.method === 'HEAD' || status === 204 || status === 304;
    if (noBody && text.length > 0) problems.push(`a ${status} to ${answer.method} with a body`);

    if (operationId === undefined) {
      if (status < 400) return [`${status} to a request the contract has no operation for`];
      if (answer.method !== 'HEAD') problems.push(...this.#problemBody(status, media, text));
      return problems;
    }
    const op = this.operation(operationId);
    const declared = op.responses.get(String(status)) ?? op.responses.get('default');
    if (!declared) return [`${status} is not declared for ${op.id}`];

    for (const [name, header] of declared.headers) {
      const value = headers.get(name);
      if (value === null || !header.validate) continue;
      const read = header.type === 'integer' || header.type === 'number' ? (/^-?\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : value) : value;
      if (!header.validate(read)) problems.push(`header ${name}: ${JSON.stringify(value)} ${this.#ajv.errorsText(header.validate.errors, { dataVar: '' }).trim()}`);
    }
    if (noBody) return problems;

    if (declared.media.size === 0) {
      if (text.length > 0) problems.push(`${status} of ${op.id} declares no body, yet one came (${type ?? 'no Content-Type'}: ${JSON.stringify(text.slice(0, 80))})`);
      return problems;
    }
    if (media === undefined || !declared.media.has(media)) {
      problems.push(`${status} of ${op.id} is ${type ?? 'without Content-Type'}, not ${[...declared.media.keys()].join(' or ')}`);
      return problems;
    }
    const validate = declared.media.get(media);
    if (media === 'application/problem+json') {
      problems.push(...this.#problemBody(status, media, text));
      return problems;
    }
    if (/[/+]json$/.test(media)) {
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        problems.push(`${status} of ${op.id}: the body is not JSON: ${JSON.stringify(text.slice(0, 80))}`);
        return problems;
      }
      if (validate && !validate(body)) problems.push(`${status} of ${op.id}: ${this.#errors(validate)}`);
    } else if (validate && !validate(text)) {
      problems.push(`${status} of ${op.id}: ${this.#errors(validate)}`);
    }
    return problems;
  }

  /** An RFC 9457 problem: problem+json, the Problem schema, and a `status` equal to the answer's. */
  #problemBody(status: number, media: string | undefined, text: string): string[] {
    if (media !== 'application/problem+json') return [`a ${status} that is ${media ?? 'without Content-Type'}, not application/problem+json`];
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return [`a ${status} whose problem is not JSON: ${JSON.stringify(text.slice(0, 80))}`];
    }
    if (!this.#problem(body)) return [`a ${status} problem: ${this.#errors(this.#problem)}`];
    if ((body as { status?: unknown }).status !== status) return [`a ${status} whose problem says status ${JSON.stringify((body as { status?: unknown }).status)}`];
    return [];
  }

  #errors(validate: ValidateFunction): string {
    return (validate.errors ?? [])
      .slice(0, 3)
      .map((e) => `${e.instancePath || '/'} ${e.message ?? e.keyword}${e.keyword === 'additionalProperties' ? ` (${String((e.params as { additionalProperty?: string }).additionalProperty)})` : ''}`)
      .join('; ');
  }
}
