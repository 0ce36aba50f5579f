/**
 * The part of JSON Schema that openapi.yaml's request schemas use, enough to check a form
 * before it is sent: the server validates again, so this only saves a round trip and says
 * which field is wrong.
 */
export interface JsonSchema {
  type?: string | string[];
  required?: string[];
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  format?: string;
  enum?: unknown[];
}

export interface SchemaProblem {
  /** The field, or '' for the whole value. */
  field: string;
  message: string;
}

// RFC 3339 as the server takes it (date-time, with Z or a ±hh:mm offset).
const DATE_TIME = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function checkValue(schema: JsonSchema, value: unknown, field: string, out: SchemaProblem[]): void {
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    const actual = typeOf(value);
    if (!types.includes(actual) && !(actual === 'integer' && types.includes('number'))) {
      out.push({ field, message: `must be ${types.join(' or ')}` });
      return;
    }
  }
  if (schema.enum && !schema.enum.includes(value)) out.push({ field, message: `must be one of ${schema.enum.join(', ')}` });
  if (typeof value === 'string') {
    // JSON Schema counts characters (code points), not UTF-16 units.
    const length = [...value].length;
    if (schema.minLength !== undefined && length < schema.minLength) out.push({ field, message: `must have at least ${schema.minLength} character${schema.minLength === 1 ? '' : 's'}` });
    if (schema.maxLength !== undefined && length > schema.maxLength) out.push({ field, message: `must have at most ${schema.maxLength} characters` });
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) out.push({ field, message: 'holds a character the server refuses' });
    if (schema.format === 'date-time' && (!DATE_TIME.test(value) || Number.isNaN(Date.parse(value)))) out.push({ field, message: 'must be an RFC 3339 time, e.g. 2026-12-03T10:00:00Z' });
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) out.push({ field, message: `must be at least ${schema.minimum}` });
    if (schema.maximum !== undefined && value > schema.maximum) out.push({ field, message: `must be at most ${schema.maximum}` });
  }
  if (typeOf(value) === 'object') {
    const object = value as Record<string, unknown>;
    for (const name of schema.required ?? []) if (!(name in object)) out.push({ field: name, message: 'is required' });
    for (const [name, child] of Object.entries(object)) {
      const property = schema.properties?.[name];
      if (property) checkValue(property, child, name, out);
      else if (schema.additionalProperties === false) out.push({ field: name, message: 'is not a field of this object' });
    }
  }
}

/** What is wrong with value by schema; empty when nothing is. */
export function checkSchema(schema: JsonSchema, value: unknown): SchemaProblem[] {
  const out: SchemaProblem[] = [];
  checkValue(schema, value, '', out);
  return out;
}
