/** The one logger. Modules receive it (or a child with scope fields); none call console.*. */
import { pino, type Logger } from 'pino';

export function createLogger(level: string, node: string): Logger {
  return pino({
    level,
    base: { node },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['*.authorization', '*.headers', 'token', '*.token', 'secret', '*.signing_secrets', 'body', '*.body'], censor: '[redacted]' },
  });
}
