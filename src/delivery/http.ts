/**
 * One HTTP exchange and what it is made of: the request headers' names, the retry classification
 * of a status, Retry-After, the full-jitter backoff, the HMAC signature and the low-level request
 * on undici's dispatch API (the body read straight from the socket's chunks).
 */
import { createHmac } from 'node:crypto';
import type { Agent } from 'undici';
import type { RetryPolicy } from '../task/index.js';
import type { DeliveryJob } from './types.js';

/** Raised inside the exchange when the lease lapsed between the attempt's start and the request write. */
export class LeaseLapsedError extends Error {
  constructor() {
    super('lease lapsed before the request was written');
    this.name = 'LeaseLapsedError';
  }
}

/** The headers xcron sets on every attempt (see Delivery.headers). */
export const OWN_HEADERS = new Set(['content-type', 'user-agent', 'x-xcron-task-id', 'x-xcron-fire-id', 'x-xcron-scheduled-time', 'x-xcron-attempt', 'x-xcron-signature']);
export const RETRYABLE_STATUS = (s: number): boolean => s === 408 || s === 429 || s >= 500;
const MAX_RETRY_AFTER_MS = 3_600_000;

/** The first value of a response header in undici's raw [name, value, ...] list (name in lower case). */
export function rawHeader(raw: readonly (Buffer | string)[] | null, name: string): string | undefined {
  if (!raw) return undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === name.length && n.toString().toLowerCase() === name) return raw[i + 1]!.toString();
  }
  return undefined;
}

/** Parses a Retry-After header (delta seconds or an HTTP date) into ms from now. */
export function parseRetryAfter(v: string | string[] | undefined, now: number): number | null {
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return null;
  if (/^\s*\d+\s*$/.test(s)) return Math.min(Number(s) * 1000, MAX_RETRY_AFTER_MS);
  const t = Date.parse(s);
  if (Number.isNaN(t)) return null;
  return Math.min(Math.max(0, t - now), MAX_RETRY_AFTER_MS);
}

/** Full-jitter exponential backoff before attempt `attempt + 1`. */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number): number {
  const cap = Math.min(policy.max_backoff_ms, policy.backoff_ms * 2 ** Math.min(attempt - 1, 30));
  return Math.floor(random() * cap);
}

/** `t=<unix s>,v1=<hex>[,v1=<hex>]`: HMAC-SHA256 over "t.body" with each secret. */
export function signature(secrets: readonly string[], unixSeconds: number, body: string): string {
  const parts = [`t=${unixSeconds}`];
  for (const s of secrets) parts.push(`v1=${createHmac('sha256', s).update(`${unixSeconds}.${body}`).digest('hex')}`);
  return parts.join(',');
}

/** A parsed callback URL: what the dispatcher needs. */
export interface Target {
  origin: string;
  path: string;
}

/** The response bytes read at most (past it the exchange is aborted) and the bytes kept for the run record. */
export interface ExchangeLimits {
  maxBytes: number;
  keepBytes: number;
}

/** Whether a job's lease has lapsed (checked right before the request is written). */
export interface LeaseCheck {
  lapsed(job: DeliveryJob): boolean;
}

/**
 * One request on the agent's low-level dispatch API: the response body is read straight from the
 * socket's chunks (no stream, no promise per chunk). Up to maxResponseBytes are read and the first
 * keepBytes kept; past the cap the exchange is aborted (the connection is closed) and the answer
 * stands with what was read. Network errors and timeouts reject.
 *
 * The handler uses undici's raw hooks (onConnect/onHeaders/onData/onComplete/onError), which its
 * clients call directly: a handler written for the newer controller API is wrapped per request,
 * and the wrapper turns the response headers and trailers into objects, which a burst profile
 * put at about 5 % of the delivery thread. Only Retry-After is read, and only from an answer
 * that is retried.
 *
 * timeout_ms bounds the wait for the response headers and every gap in the body (undici's own
 * timers: no AbortSignal per request).
 */
export function exchange(
  agent: Agent,
  limits: ExchangeLimits,
  gate: LeaseCheck | null,
  url: Target,
  job: DeliveryJob,
  headers: string[],
  sendBody: boolean,
): Promise<{ status: number; body: string | null; retryAfter: string | undefined }> {
  const { keepBytes, maxBytes } = limits;
  return new Promise((resolve, reject) => {
    let status = 0;
    let retryAfter: string | undefined;
    let kept: Buffer[] | null = null;
    let keptLen = 0;
    let total = 0;
    let capped = false;
    let abort: ((err?: Error) => void) | null = null;
    const done = (): void => resolve({ status, body: keptLen === 0 ? null : Buffer.concat(kept!, keptLen).toString('utf8'), retryAfter });
    try {
      agent.dispatch(
        { origin: url.origin, path: url.path, method: job.method, headers, body: sendBody ? job.body : null, headersTimeout: job.timeout_ms, bodyTimeout: job.timeout_ms },
        {
          onConnect(a) {
            abort = a;
            if (gate !== null && gate.lapsed(job)) a(new LeaseLapsedError());
          },
          onHeaders(statusCode, rawHeaders) {
            status = statusCode;
            retryAfter = RETRYABLE_STATUS(statusCode) ? rawHeader(rawHeaders, 'retry-after') : undefined;
            return true;
          },
          onData(chunk) {
            total += chunk.length;
            if (keptLen < keepBytes) {
              const part = chunk.length <= keepBytes - keptLen ? chunk : chunk.subarray(0, keepBytes - keptLen);
              (kept ??= []).push(part);
              keptLen += part.length;
            }
            if (total > maxBytes && !capped) {
              capped = true;
              abort?.(new Error('response body over max_response_bytes'));
            }
            return true;
          },
          onComplete: done,
          onError(err) {
            if (capped) done();
            else reject(err);
          },
        },
      );
    } catch (e) {
      reject(e as Error);
    }
  });
}
