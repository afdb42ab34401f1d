/**
 * The client's options and the pieces of its transport that need no client: per-call options, the
 * retry policy, the answer wrapper, Retry-After parsing and the envelope check.
 */
import type { XcronApiError, XcronTransportError } from './errors.js';
import type { Envelope } from './types.js';

/** How failed requests are retried. */
export interface RetryOptions {
  /** Retries after the first request (default 3; 0 = never retry). */
  retries?: number;
  /** First backoff delay (default 200 ms); doubles with each retry, with full jitter. */
  baseDelayMs?: number;
  /** Cap of one backoff delay (default 5000 ms). */
  maxDelayMs?: number;
  /**
   * A Retry-After longer than this is not waited for: the error is thrown at once (default 60000).
   * A shorter one is the least delay before the retry.
   */
  maxRetryAfterMs?: number;
  /** HTTP statuses that are retried (default [503]; add 429 to wait out rate limits). */
  statuses?: readonly number[];
  /**
   * Also retry connection errors and timeouts of GET requests, which change nothing (default
   * true). POSTs are never retried on those: the server may have applied them.
   */
  networkErrorsOnGet?: boolean;
  /** Called before each retry's wait, with what failed and how long the wait is. */
  onRetry?: (info: RetryInfo) => void;
}

export interface RetryInfo {
  method: string;
  path: string;
  /** The attempt that failed (1-based). */
  attempt: number;
  delayMs: number;
  /** The Retry-After of the answer, in ms, when it had one. */
  retryAfterMs: number | null;
  error: XcronApiError | XcronTransportError;
}

export interface ClientOptions {
  /** Base URL of any node (or the load balancer), e.g. `http://127.0.0.1:8000`. */
  baseUrl: string;
  /** An API token, sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
  /** Timeout of one request (default 30000 ms). */
  timeoutMs?: number;
  retry?: RetryOptions;
  /** A fetch implementation (default: the global fetch). */
  fetch?: typeof fetch;
  /** Jitter source in [0, 1) (default Math.random). */
  random?: () => number;
}

/** Per-call options, the last argument of every method. */
export interface CallOptions {
  signal?: AbortSignal;
  /** Sent as X-Request-Id (1-128 of `A-Za-z0-9._:@/+=-`); the server echoes it and logs it. */
  requestId?: string;
  /** Overrides the client's request timeout. */
  timeoutMs?: number;
  /** Overrides the client's retry count for this call. */
  retries?: number;
}

export type HttpMethod = 'GET' | 'POST';

export interface RequestSpec {
  /** Query parameters; undefined and null values are left out. */
  query?: Record<string, string | number | boolean | null | undefined>;
  /** Sent as JSON. */
  body?: unknown;
}

/** What a successful call answered: the envelope's data plus its request id and message. */
export interface ApiResult<T> {
  data: T;
  message: string;
  requestId: string;
  httpStatus: number;
}

export const sleep = (ms: number, signal: AbortSignal | undefined): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal!.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** Retry-After in ms (delta seconds or an HTTP date), or null. */
export function parseRetryAfter(v: string | null, now = Date.now()): number | null {
  if (v === null || v.trim() === '') return null;
  if (/^\s*\d+\s*$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

export function isEnvelope(v: unknown): v is Envelope<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { code?: unknown }).code === 'number' && typeof (v as { message?: unknown }).message === 'string';
}
