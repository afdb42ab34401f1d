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
  RUN_NOT_FOUND: 1021,
  RUN_NOT_FAILED: 1022,
  RUN_RETRIED: 1023,
  UNKNOWN_TARGET: 1024,
  EXECUTOR_GROUP: 1025,
  EXECUTOR_ADDRESS: 1026,
  EXECUTOR_NOT_FOUND: 1027,
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

/** A connection refused by the callback destination policy (SSRF guard): final, never retried. */
export class DestinationRefusedError extends Error {
  override readonly name: string = 'DestinationRefusedError';
  readonly code = 'XCRON_DESTINATION_REFUSED';
}

/** A step that did not finish before its deadline (a shutdown step, a store read for a scrape). */
export class DeadlineError extends Error {
  override readonly name: string = 'DeadlineError';
  constructor(
    readonly what: string,
    readonly timeoutMs: number,
  ) {
    super(`${what} did not finish within ${timeoutMs} ms`);
  }
}

// ---------------------------------------------------------------------------------------------
// Errors across a thread boundary. A structured clone keeps an Error's message but not its class
// (a custom class arrives as a plain Error), so a worker sends `toWire(e)` and the other side
// rebuilds the class with `fromWire(w)`: `instanceof` then works the same on both sides.

/** An error as plain data: the class name, the message, and the fields that class carries. */
export interface WireError {
  name: string;
  message: string;
  /** A machine-readable code: an XcronError's public code, or a system/driver code ('SQLITE_BUSY', 'ECONNREFUSED'). */
  code?: string | number | undefined;
  /** XcronError only. */
  status?: number | undefined;
  stack?: string | undefined;
  /** The stack of the error's cause, when it has one. */
  cause?: string | undefined;
}

export function toWire(e: unknown): WireError {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e) };
  const w: WireError = { name: e.name, message: e.message, stack: e.stack };
  if (e.cause instanceof Error) w.cause = e.cause.stack ?? e.cause.message;
  if (e instanceof XcronError) {
    w.code = e.code;
    w.status = e.status;
    return w;
  }
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' || typeof code === 'number') w.code = code;
  return w;
}

type Rebuild = (w: WireError) => Error;
const XCRON_STATUSES = new Set([400, 401, 403, 404, 405, 409, 413, 415, 429, 500, 503]);
const isCode = (c: unknown): c is Code => typeof c === 'number' && (Object.values(Codes) as number[]).includes(c);

/** The classes that cross a thread boundary as themselves, by their `name`. */
const REBUILD: Record<string, Rebuild> = {
  XcronError: (w) =>
    isCode(w.code) && XCRON_STATUSES.has(w.status ?? 0)
      ? new XcronError(w.code, w.status as XcronError['status'], w.message)
      : new XcronError(Codes.INTERNAL, 500, w.message),
  StoreUnavailableError: (w) => new StoreUnavailableError(w.message),
  ConfigError: (w) => new ConfigError(w.message),
  DestinationRefusedError: (w) => new DestinationRefusedError(w.message),
  TypeError: (w) => new TypeError(w.message),
  RangeError: (w) => new RangeError(w.message),
};

/**
 * The error a WireError describes, as its own class when it is one of xcron's (or a TypeError or
 * RangeError); any other is an Error keeping the original name and code. The stack is the
 * thread's where it was thrown.
 */
export function fromWire(w: WireError): Error {
  const rebuild = Object.hasOwn(REBUILD, w.name) ? REBUILD[w.name] : undefined;
  const e: Error & { code?: string | number } = rebuild ? rebuild(w) : new Error(w.message);
  if (!rebuild) {
    if (w.name !== 'Error') Object.defineProperty(e, 'name', { value: w.name, configurable: true, writable: true });
    if (w.code !== undefined) e.code = w.code;
  } else if (w.code !== undefined && !(e instanceof XcronError) && !(e instanceof DestinationRefusedError)) {
    e.code = w.code;
  }
  if (w.stack !== undefined) e.stack = w.stack;
  return e;
}

/** The client closed the connection before its request body had arrived: nothing to answer, not a fault. */
export class RequestAbortedError extends Error {
  override readonly name: string = 'RequestAbortedError';
}
