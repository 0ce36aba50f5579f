import { BadRequestError } from '../errors.js';
import type { KeyFields } from './contract.js';

/**
 * The server's limit on a job's key (--max-key-length): the bytes of UTF-8 of its queue and id
 * together, wherever a request names them (the query, a body, each element of a batch). Which
 * fields are keys comes from the contract (parameters and properties that are a QueueName or a
 * JobId), so an operation added to openapi.yaml is covered without code here. Within the
 * absolute limit (job-rules.ts) it bounds what a lookup or an index entry may cost.
 */

function bytesOf(record: Record<string, unknown>, fields: KeyFields['query']): number {
  let bytes = 0;
  for (const { name } of fields) {
    const value = record[name];
    if (typeof value === 'string') bytes += Buffer.byteLength(value);
  }
  return bytes;
}

/** The field a refusal names: the id, as job-rules.ts does, else the queue. */
function blamed(fields: KeyFields['query']): string {
  return (fields.find((f) => f.part === 'id') ?? fields[0]!).name;
}

function refuse(bytes: number, max: number, path: string): never {
  throw new BadRequestError(`a job's queue and id take ${bytes} bytes of UTF-8 together; at most ${max} are accepted`, [
    { path, message: `queue and id together must not exceed ${max} bytes of UTF-8` },
  ]);
}

export function checkQueryKeys(query: Record<string, unknown>, keys: KeyFields, max: number): void {
  if (keys.query.length === 0) return;
  const bytes = bytesOf(query, keys.query);
  if (bytes > max) refuse(bytes, max, `/query/${blamed(keys.query)}`);
}

export function checkBodyKeys(body: unknown, keys: KeyFields, max: number): void {
  if (keys.body.length === 0 || typeof body !== 'object' || body === null) return;
  const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const field = blamed(keys.body);
  if (!Array.isArray(body)) {
    if (!isRecord(body)) return;
    const bytes = bytesOf(body, keys.body);
    if (bytes > max) refuse(bytes, max, `/body/${field}`);
    return;
  }
  for (const [i, element] of body.entries()) {
    if (!isRecord(element)) continue;
    const bytes = bytesOf(element, keys.body);
    if (bytes > max) refuse(bytes, max, `/body/${i}/${field}`);
  }
}
