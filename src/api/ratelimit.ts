/**
 * Per-client rate limit: a token bucket per key (the API token's principal when the request carries
 * a valid token, else the client IP). Over the limit: HTTP 429, code 1014, with Retry-After.
 * Time comes from the injected clock, so tests drive refills with a manual clock.
 */
import type { Context, MiddlewareHandler } from 'hono';
import type { Clock } from '../clock/index.js';
import { Codes, XcronError } from '../errors.js';
import { fail } from './envelope.js';

export interface RateLimitOptions {
  /** Requests per second per key (refill rate). 0 disables the limiter. */
  perSec: number;
  /** Bucket size (requests allowed in a burst). Default: max(1, perSec). */
  burst?: number;
  clock: Clock;
  /** The key of a request. */
  keyOf: (c: Context) => string;
  /** Buckets kept at most; full (idle) buckets are dropped first. */
  maxKeys?: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  readonly burst: number;

  constructor(
    readonly perSec: number,
    burst: number,
    private readonly maxKeys = 100_000,
  ) {
    this.burst = burst > 0 ? burst : Math.max(1, perSec);
  }

  /** Takes one token for `key` at time `now`. Returns 0 when allowed, else ms until a token is available. */
  take(key: string, now: number): number {
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxKeys) this.sweep(now);
      b = { tokens: this.burst, at: now };
      this.buckets.set(key, b);
    } else {
      const elapsed = Math.max(0, now - b.at);
      b.tokens = Math.min(this.burst, b.tokens + (elapsed * this.perSec) / 1000);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) * 1000) / this.perSec);
  }

  size(): number {
    return this.buckets.size;
  }

  /** Drops buckets that would be full by now (idle clients); if still too many, the oldest half. */
  private sweep(now: number): void {
    for (const [k, b] of this.buckets) {
      if (b.tokens + ((now - b.at) * this.perSec) / 1000 >= this.burst) this.buckets.delete(k);
    }
    if (this.buckets.size >= this.maxKeys) {
      let n = Math.ceil(this.buckets.size / 2);
      for (const k of this.buckets.keys()) {
        if (n-- <= 0) break;
        this.buckets.delete(k);
      }
    }
  }
}

/** The client address of a request served by @hono/node-server ('unknown' under app.request). */
export function clientIp(c: Context): string {
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined;
  return env?.incoming?.socket?.remoteAddress ?? 'unknown';
}

export function rateLimit({ perSec, burst = 0, clock, keyOf, maxKeys }: RateLimitOptions): MiddlewareHandler {
  const buckets = new TokenBuckets(perSec, burst, maxKeys);
  return async (c, next) => {
    if (perSec <= 0) {
      await next();
      return;
    }
    const waitMs = buckets.take(keyOf(c), clock.now());
    if (waitMs > 0) {
      const retryAfter = Math.max(1, Math.ceil(waitMs / 1000));
      return fail(c, new XcronError(Codes.RATE_LIMITED, 429, `rate limit exceeded: at most ${perSec} requests per second (burst ${buckets.burst}); retry after ${retryAfter} s`), {
        'Retry-After': String(retryAfter),
      });
    }
    await next();
  };
}
