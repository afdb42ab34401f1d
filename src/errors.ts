/**
 * Typed errors. Every failure that reaches a client is an XcronError carrying the public
 * error code (API.md) and the HTTP status of its failure class. Check with `instanceof`,
 * never by matching message text.
 */

export const Codes = {
  OK: 0,
  BAD_JSON: 1000,
  ONESHOT_FORMAT: 1001,
  ONESHOT_TIME: 1002,
  CALLBACK_URL: 1003,
  STORE_WRITE: 1004,
  CRON_INVALID: 1005,
  TIMEZONE: 1006,
  TASK_NOT_FOUND: 1007,
  TOO_LARGE: 1008,
  INVALID_OPTION: 1009,
  UNAUTHORIZED: 1010,
  SSRF_REFUSED: 1011,
  ROUTE_NOT_FOUND: 1012,
  METHOD_NOT_ALLOWED: 1013,
  RATE_LIMITED: 1014,
  STORE_UNAVAILABLE: 1016,
  RUN_CLOSED: 1017,
  RUN_NOT_ASYNC: 1018,
  UNSUPPORTED_TYPE: 1020,
  INTERNAL: 1099,
} as const;

export type Code = (typeof Codes)[keyof typeof Codes];

/** A failure with a public code, an HTTP status and a message a caller can act on. */
export class XcronError extends Error {
  override readonly name: string = 'XcronError';
  constructor(
    readonly code: Code,
    readonly status: 400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 429 | 500 | 503,
    message: string,
  ) {
    super(message);
  }
}

export const badInput = (code: Code, message: string): XcronError => new XcronError(code, 400, message);
export const typeError = (field: string, expected: string, got: unknown): XcronError =>
  new XcronError(Codes.BAD_JSON, 400, `field '${field}' must be ${expected}, got ${describe(got)}`);
export const invalidOption = (field: string, message: string): XcronError =>
  new XcronError(Codes.INVALID_OPTION, 400, `invalid '${field}': ${message}`);

/** A short, safe description of a received JSON value for error messages. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'an array';
  switch (typeof v) {
    case 'string': {
      const s = v.length > 40 ? `${v.slice(0, 40)}…` : v;
      return `the string ${JSON.stringify(s)}`;
    }
    case 'number':
      return `the number ${v}`;
    case 'boolean':
      return `${v}`;
    case 'object':
      return 'an object';
    default:
      return typeof v;
  }
}

/** The store could not be reached or failed to write; retryable by the caller. */
export class StoreUnavailableError extends Error {
  override readonly name: string = 'StoreUnavailableError';
}

/** A configuration problem found at start; the message names the key. */
export class ConfigError extends Error {
  override readonly name: string = 'ConfigError';
}

/** The client closed the connection before its request body had arrived: nothing to answer, not a fault. */
export class RequestAbortedError extends Error {
  override readonly name: string = 'RequestAbortedError';
}
