import { BadRequestError } from '../errors.js';

/**
 * What a JSON body may hold so that the database stores it as sent: PostgreSQL's jsonb
 * refuses the NUL character and unpaired UTF-16 surrogates in strings and keys, and a number
 * beyond a double's range would come back as null. Nesting is bounded because every layer
 * that handles a value recursively (serializers, the database's parser) has a stack; past
 * it, one request would fail every request coalesced with it.
 */
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

interface Frame {
  value: unknown;
  depth: number;
  parent: Frame | undefined;
  key: string | number | undefined;
}

function pointer(frame: Frame, last?: string | number): string {
  const parts: Array<string | number> = last === undefined ? [] : [last];
  for (let f: Frame | undefined = frame; f && f.key !== undefined; f = f.parent) parts.unshift(f.key);
  return ['/body', ...parts.map((p) => String(p).replace(/~/g, '~0').replace(/\//g, '~1'))].join('/');
}

function refuse(detail: string, path: string, message: string): never {
  throw new BadRequestError(detail, [{ path, message }]);
}

/** Throws BadRequestError (naming where) for a value nested deeper than maxDepth or holding what the database cannot store. */
export function checkJsonValue(root: unknown, maxDepth: number): void {
  // Iterative: a recursive walk would itself overflow the stack on the inputs it must refuse.
  const stack: Frame[] = [{ value: root, depth: 1, parent: undefined, key: undefined }];
  while (stack.length > 0) {
    const frame = stack.pop()!;
    const { value, depth } = frame;
    if (typeof value === 'string') {
      if (UNSTORABLE.test(value)) {
        refuse('a string holds a character that cannot be stored', pointer(frame), 'must not contain NUL (\\u0000) or an unpaired surrogate');
      }
    } else if (typeof value === 'number') {
      if (!Number.isFinite(value)) refuse('a number is out of range', pointer(frame), 'must be a finite number');
    } else if (typeof value === 'object' && value !== null) {
      if (depth > maxDepth) {
        refuse(`the JSON is nested more than ${maxDepth} levels deep`, pointer(frame), `must not be nested more than ${maxDepth} levels deep`);
      }
      if (Array.isArray(value)) {
        for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], depth: depth + 1, parent: frame, key: i });
      } else {
        for (const key in value) {
          if (UNSTORABLE.test(key)) {
            refuse('a key holds a character that cannot be stored', pointer(frame, key), 'must not contain NUL (\\u0000) or an unpaired surrogate');
          }
          stack.push({ value: (value as Record<string, unknown>)[key], depth: depth + 1, parent: frame, key });
        }
      }
    }
  }
}
