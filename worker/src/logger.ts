/**
 * What the worker logs through. `console` fits, and so does a pino or winston logger behind a
 * one-line adapter. Every method is optional; the default logs nothing.
 */
export interface Logger {
  debug?(message: string, fields?: Record<string, unknown>): void;
  info?(message: string, fields?: Record<string, unknown>): void;
  warn?(message: string, fields?: Record<string, unknown>): void;
  error?(message: string, fields?: Record<string, unknown>): void;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Logs through `logger`, never throwing: a broken logger must not break the worker. */
export function log(logger: Logger, level: LogLevel, message: string, fields?: Record<string, unknown>): void {
  try {
    logger[level]?.(message, fields);
  } catch {
    // ignored on purpose
  }
}

/** The default: no output at all. */
export const silentLogger: Logger = Object.freeze({});
