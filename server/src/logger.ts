import { pino, type Logger } from 'pino';

export type { Logger };

/** base: fields every line carries (the pid of each of several server processes). */
export function createLogger(level: string, base?: Record<string, unknown>): Logger {
  // Nothing logs request headers today; should anything start to, tokens still stay out.
  const options = { level, base, redact: { paths: ['authorization', '*.authorization', '*.headers.authorization', 'req.headers.authorization'], censor: '[redacted]' } };
  // A line per request (http/request-log.ts): written asynchronously, lines that arrive while a
  // write is under way go out together with the next one, instead of one blocking write each.
  // pino flushes what is left when the process exits.
  return pino(options, pino.destination({ dest: 1, sync: false }));
}
