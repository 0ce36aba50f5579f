/**
 * What the worker logs through. `console` fits, and so does a pino or winston logger behind a
 * one-line adapter. Every method is optional: `{}` logs nothing. Without a logger, warnings and
 * errors go to stderr (`stderrLogger`).
 */
export interface Logger {
  debug?(message: string, fields?: Record<string, unknown>): void;
  info?(message: string, fields?: Record<string, unknown>): void;
  warn?(message: string, fields?: Record<string, unknown>): void;
  error?(message: string, fields?: Record<string, unknown>): void;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** An Error as a plain object: JSON and loggers see none of an Error's own fields (they are not enumerable). */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  cause?: unknown;
  [field: string]: unknown;
}

const MAX_CAUSE_DEPTH = 3;

/** `{ name, message, stack, ...its own fields, cause }` of an Error; any other value as it is. */
export function serializeError(error: unknown, depth = 0): unknown {
  if (!(error instanceof Error)) return error;
  const out: SerializedError = { name: error.name, message: error.message };
  for (const [key, value] of Object.entries(error)) {
    // An error's own errors (a RelayError's uncertainAttemptError) as errors too.
    if (typeof value !== 'function' && key !== 'cause') out[key] = value instanceof Error && depth < MAX_CAUSE_DEPTH ? serializeError(value, depth + 1) : value;
  }
  if (error.stack !== undefined) out.stack = error.stack;
  if (error.cause !== undefined) out.cause = depth < MAX_CAUSE_DEPTH ? serializeError(error.cause, depth + 1) : String(error.cause);
  return out;
}

function serializeFields(fields: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (fields === undefined) return undefined;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) out[key] = serializeError(value);
  return out;
}

/** Logs through `logger` with errors serialized, never throwing: a broken logger must not break the worker. */
export function log(logger: Logger, level: LogLevel, message: string, fields?: Record<string, unknown>): void {
  try {
    const method = logger[level];
    if (method) method.call(logger, message, serializeFields(fields));
  } catch {
    // ignored on purpose
  }
}

/** A field's value on one line: text as JSON (quoted, newlines escaped), an error as "Name: message". */
function inline(value: unknown): string {
  if (typeof value === 'object' && value !== null && typeof (value as SerializedError).message === 'string' && typeof (value as SerializedError).name === 'string') {
    const error = value as SerializedError;
    return JSON.stringify(`${error.name}: ${error.message}`);
  }
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return JSON.stringify(String(value));
  }
}

/** One line to stderr per warning or error, `relay-worker warn: message key=value …`, without stacks. */
export function formatLine(level: LogLevel, message: string, fields?: Record<string, unknown>): string {
  const parts = [`relay-worker ${level}: ${message}`];
  for (const [key, value] of Object.entries(fields ?? {})) if (value !== undefined) parts.push(`${key}=${inline(value)}`);
  return `${parts.join(' ')}\n`;
}

/** The default: warnings and errors to stderr, one line each; debug and info nowhere. */
export const stderrLogger: Logger = Object.freeze({
  warn: (message: string, fields?: Record<string, unknown>) => void process.stderr.write(formatLine('warn', message, fields)),
  error: (message: string, fields?: Record<string, unknown>) => void process.stderr.write(formatLine('error', message, fields)),
});
