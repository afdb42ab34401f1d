/**
 * Start-up failures told in one line, without a stack trace: what went wrong, with which address,
 * port or URL, and what to set. main prints them (and the store's, src/store/startup-errors.ts).
 */
import { startupFailureText as storeFailureText } from './store/startup-errors.js';

/** A failure to start that the message explains fully. */
export class StartupError extends Error {
  override readonly name: string = 'StartupError';
}

const codeOf = (e: unknown): string => {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : '';
};

/** The listen error explained, by its errno code; other errors are returned as they are. */
export function listenFailure(e: unknown, host: string, port: number): unknown {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  switch (codeOf(e)) {
    case 'EADDRINUSE':
      return new StartupError(`port ${port} is in use (listening on ${where}); set XCRON_HTTP_PORT or http_port to a free port, or stop the process that holds it`, { cause: e });
    case 'EACCES':
    case 'EPERM':
      return new StartupError(`not allowed to listen on ${where} (ports below 1024 need privileges); set XCRON_HTTP_PORT or http_port to a port from 1024 up`, { cause: e });
    case 'EADDRNOTAVAIL':
      return new StartupError(`cannot listen on ${where}: ${host} is not an address of this machine; set XCRON_HTTP_HOST or http_host (127.0.0.1: this machine only; 0.0.0.0: every interface)`, { cause: e });
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
      return new StartupError(`cannot listen on ${where}: the host name ${host} does not resolve; set XCRON_HTTP_HOST or http_host to an address of this machine`, { cause: e });
    default:
      return e;
  }
}

/** Redis did not answer within the start-up wait. */
export function redisFailure(e: unknown, url: string, timeoutMs: number): StartupError {
  const why = e instanceof Error ? e.message : String(e);
  return new StartupError(
    `gave up waiting for Redis at ${url} after ${timeoutMs} ms (${why}). ` +
      `Check [cluster] redis_url (XCRON_CLUSTER_REDIS_URL) and that Redis runs and is reachable from here; ` +
      `[cluster] connect_timeout_ms (XCRON_CLUSTER_CONNECT_TIMEOUT_MS) sets how long the start waits`,
    { cause: e },
  );
}

/** What main prints after "failed to start: ": the message alone for an explained failure, else the stack. */
export function startupFailureText(e: unknown, verbose = false): string {
  if (e instanceof StartupError) {
    const cause = e.cause instanceof Error && verbose ? `\n${e.cause.stack ?? e.cause.message}` : '';
    return e.message + cause;
  }
  return storeFailureText(e, verbose);
}
