/**
 * Typed errors. A failure answered by the server is an {@link XcronApiError} (or one of its family
 * subclasses) carrying the public error code, the HTTP status and the request id. A failure to get
 * an answer at all (connection refused, timeout, a body that is not the envelope) is an
 * {@link XcronTransportError}. Check with `instanceof` or `code`, never by matching message text.
 */

/** The server's public error codes (docs/api.md). */
export const ErrorCodes = {
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

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Base of every error this package throws. */
export class XcronClientError extends Error {
  override readonly name: string = 'XcronClientError';
}

export interface ApiErrorInit {
  code: number;
  httpStatus: number;
  message: string;
  /** The envelope's uuid (the server's id of this request; its log lines carry it). */
  requestId: string | null;
  method: string;
  path: string;
  /** Requests made, the failing one included (more than 1 after retries). */
  attempts: number;
  /** Retry-After of the answer, in ms, when it carried one. */
  retryAfterMs: number | null;
}

/** The server answered with a failure envelope. */
export class XcronApiError extends XcronClientError {
  override readonly name: string = 'XcronApiError';
  /** One of {@link ErrorCodes} (a newer server may send a code this version does not list). */
  readonly code: number;
  readonly httpStatus: number;
  readonly requestId: string | null;
  readonly method: string;
  readonly path: string;
  readonly attempts: number;
  readonly retryAfterMs: number | null;

  constructor(init: ApiErrorInit) {
    super(`${init.message} (code ${init.code}, HTTP ${init.httpStatus}${init.requestId ? `, request ${init.requestId}` : ''})`);
    this.code = init.code;
    this.httpStatus = init.httpStatus;
    this.requestId = init.requestId;
    this.method = init.method;
    this.path = init.path;
    this.attempts = init.attempts;
    this.retryAfterMs = init.retryAfterMs;
    this.serverMessage = init.message;
  }

  /** The server's message alone (without the code/status suffix of `message`). */
  readonly serverMessage: string;
}

/** Bad input: 1000-1003, 1005, 1006, 1008, 1009, 1011, 1020, 1024-1026. The message names the field. */
export class XcronValidationError extends XcronApiError {
  override readonly name: string = 'XcronValidationError';
}

/** 1007: no such task (or run); 1012: no such endpoint; 1021: no such run (retryRun); 1027: no such executor instance. */
export class XcronNotFoundError extends XcronApiError {
  override readonly name: string = 'XcronNotFoundError';
}

/** 1010: token missing, unknown, or without the role the endpoint needs (401 / 403). */
export class XcronAuthError extends XcronApiError {
  override readonly name: string = 'XcronAuthError';
}

/** 1014: rate limited (429); `retryAfterMs` says when to come back. */
export class XcronRateLimitError extends XcronApiError {
  override readonly name: string = 'XcronRateLimitError';
}

/** 1004 / 1016 (503): the store is unavailable; retryable. Thrown after the client's own retries. */
export class XcronUnavailableError extends XcronApiError {
  override readonly name: string = 'XcronUnavailableError';
}

/**
 * 409: 1017 the run is already closed with the other outcome; 1018 a sync run takes no report;
 * 1022 the run is not a finished FAIL run; 1023 the run was retried already.
 */
export class XcronConflictError extends XcronApiError {
  override readonly name: string = 'XcronConflictError';
}

/** Any other failure code (1013 wrong method, 1099 internal error, codes newer than this client). */
export class XcronServerError extends XcronApiError {
  override readonly name: string = 'XcronServerError';
}

const VALIDATION = new Set<number>([1000, 1001, 1002, 1003, 1005, 1006, 1008, 1009, 1011, 1020, 1024, 1025, 1026]);
const CONFLICT = new Set<number>([1017, 1018, 1022, 1023]);

/** The error class of a failure envelope's code (and HTTP status, for codes this client does not know). */
export function apiErrorOf(init: ApiErrorInit): XcronApiError {
  const { code, httpStatus } = init;
  if (VALIDATION.has(code)) return new XcronValidationError(init);
  if (code === ErrorCodes.TASK_NOT_FOUND || code === ErrorCodes.ROUTE_NOT_FOUND || code === ErrorCodes.RUN_NOT_FOUND || code === ErrorCodes.EXECUTOR_NOT_FOUND) return new XcronNotFoundError(init);
  if (code === ErrorCodes.UNAUTHORIZED) return new XcronAuthError(init);
  if (code === ErrorCodes.RATE_LIMITED) return new XcronRateLimitError(init);
  if (code === ErrorCodes.STORE_WRITE || code === ErrorCodes.STORE_UNAVAILABLE || httpStatus === 503) return new XcronUnavailableError(init);
  if (CONFLICT.has(code)) return new XcronConflictError(init);
  return new XcronServerError(init);
}

/** No usable answer: connection error, timeout, abort, or a response that is not the envelope. */
export class XcronTransportError extends XcronClientError {
  override readonly name: string = 'XcronTransportError';
  constructor(
    message: string,
    readonly method: string,
    readonly path: string,
    /** HTTP status when a response arrived but was not the envelope; null otherwise. */
    readonly httpStatus: number | null,
    readonly attempts: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
