/** The one logger. Modules receive it (or a child with scope fields); none call console.*. */
import { pino, type Logger } from 'pino';

export interface LoggerOptions {
  /**
   * Write to stdout asynchronously: lines that arrive while a write is in progress are joined into
   * the next write (one write per burst of lines instead of one per line). Nothing is delayed when
   * the server is quiet; lines still buffered are flushed on exit (a SIGKILL loses them).
   */
  buffered?: boolean;
}

export function createLogger(level: string, node: string, o: LoggerOptions = {}): Logger {
  return pino(
    {
      level,
      base: { node },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: ['*.authorization', '*.headers', 'token', '*.token', 'secret', '*.signing_secrets', 'body', '*.body'], censor: '[redacted]' },
    },
    pino.destination({ dest: 1, sync: o.buffered !== true }),
  );
}
