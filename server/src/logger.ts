import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string): Logger {
  // Nothing logs request headers today; should anything start to, tokens still stay out.
  return pino({ level, base: undefined, redact: { paths: ['authorization', '*.authorization', '*.headers.authorization', 'req.headers.authorization'], censor: '[redacted]' } });
}
