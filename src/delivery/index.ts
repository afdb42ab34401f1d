/**
 * Delivery: POSTs callbacks over pooled keep-alive connections (undici Agent), with a timeout,
 * retries (exponential backoff, full jitter, Retry-After), optional HMAC signing, a global
 * concurrency cap and a per-origin cap. Outcomes are values; only bugs throw.
 *
 * A request first takes a slot of its origin, then a global slot: a receiver that hangs fills only
 * its own origin's slots, and callbacks to other receivers keep flowing.
 */
import { createHmac } from 'node:crypto';
import { Agent, buildConnector } from 'undici';
import type { Logger } from 'pino';
import { sleep, type Clock } from '../clock/index.js';
import type { LeaseGate } from '../cluster/lease-table.js';
import type { HttpMethod, RetryPolicy } from '../task/index.js';
import { parseTargetUrl } from '../task/index.js';
import { fireIdOfRun } from '../task/types.js';
import { DueGate } from './due-gate.js';
import { Semaphore } from './semaphore.js';
import { WarmConnections } from './warm.js';
import type { Targets } from './targets/index.js';
import { DestinationRefusedError, type DestinationPolicy } from './ssrf.js';

export interface DeliveryOptions {
  clock: Clock;
  log: Logger;
  userAgent: string;
  globalConcurrency: number;
  perOriginConcurrency: number;
  /** Response bytes read at most; the rest is discarded and the connection closed. */
  maxResponseBytes: number;
  /**
   * Connections per origin opened ahead for deliveries waiting for their due time (not_before),
   * bounded by the fires waiting and the per-origin cap. 0 or absent: none.
   */
  prewarmConnections?: number;
  /** Response bytes kept for the run record. */
  keepResponseBytes?: number;
  /** Current secret first, optional next secret second. Each yields a v1= signature. */
  signingSecrets: readonly string[];
  /** Random source in [0,1) for jitter (injectable for tests). */
  random?: () => number;
  /** The SSRF guard, enforced on every new connection (resolved address). None: no restriction. */
  destinations?: DestinationPolicy;
  /** Observer of every attempt's outcome (metrics). Must not throw. */
  onAttempt?: (e: AttemptEvent) => void;
  /**
   * The leases this node holds (cluster mode). A job that names its slot and lease token is sent
   * only while that lease is held: checked before each attempt and again right before the request
   * is written. None: every job may go (standalone).
   */
  leases?: LeaseGate;
  /** The configured queue targets (jobs whose url is `target:<name>`). None: such jobs fail. */
  targets?: Targets;
}

export interface AttemptEvent {
  job: DeliveryJob;
  /** 1-based attempt number. */
  attempt: number;
  outcome: AttemptOutcome;
}

export interface DeliveryJob {
  run_id: string;
  task_id: string;
  scheduled_time: number;
  url: string;
  method: HttpMethod;
  headers: Record<string, string> | null;
  /** The exact JSON bytes to send (and sign). */
  body: string;
  timeout_ms: number;
  retry: RetryPolicy;
  /** Attempt number to start at (recovered runs continue their count). */
  first_attempt: number;
  /** Failover routing: each attempt tries these targets in order until one succeeds. */
  failover_urls?: readonly string[] | undefined;
  /** Extra headers (e.g. broadcast shard index/total). */
  extra_headers?: Record<string, string> | undefined;
  /** The slot and the lease token the job is sent under (see DeliveryOptions.leases). -1 / absent: not checked. */
  slot?: number;
  token?: number;
  /**
   * Handed over ahead of its due time: the first attempt waits until this time (ms epoch) on the
   * delivery's own timer, and goes out then, never before. Absent: sent at once.
   */
  not_before?: number;
}

export interface AttemptOutcome {
  ok: boolean;
  retryable: boolean;
  status: number | null;
  error: string | null;
  /** First bytes of the response body (decoded as UTF-8). */
  body: string | null;
  /** Retry-After in ms when the receiver sent one. */
  retry_after_ms: number | null;
  duration_ms: number;
  /** True when the destination policy (SSRF guard) refused the connection. */
  refused?: boolean;
  /** True when the receiver did not answer (headers, or a gap in the body) within timeout_ms. */
  timed_out?: boolean;
  /** True when the attempt was not sent because the job's lease had lapsed (nothing was written). */
  lapsed?: boolean;
}

export interface DeliveryResult {
  ok: boolean;
  status: number | null;
  error: string | null;
  body: string | null;
  attempts: number;
  start_time: number;
  end_time: number;
  duration_ms: number;
  /** True when shutdown interrupted the delivery: the run stays unfinished and is redelivered later. */
  aborted: boolean;
  /**
   * True (with aborted) when an attempt was not sent because the lease it would have gone out
   * under had lapsed, or its attempt count could not be recorded first: the slot's owner delivers it.
   */
  lapsed?: boolean;
}

export interface DeliveryHooks {
  /** Called before each attempt (1-based attempt number). */
  onAttempt?(attempt: number): void;
  /** Called after each attempt with its outcome (before the options' onAttempt observer). */
  onOutcome?(attempt: number, outcome: AttemptOutcome): void;
  /**
   * Called before an attempt numbered 2 or more is sent (a retry after its backoff, or the first
   * attempt of a redelivery): it records that the attempt may reach the receiver, so a redelivery
   * after a crash counts on from it. The attempt waits for it; false: not sent (the delivery ends
   * as lapsed).
   */
  beforeAttempt?(attempt: number): Promise<boolean>;
}

/** An attempt that was not sent: the lease it would have gone out under had lapsed. */
const LAPSED: AttemptOutcome = { ok: false, retryable: false, status: null, error: 'not sent: lease lapsed', body: null, retry_after_ms: null, duration_ms: 0, lapsed: true };

/** Raised inside the exchange when the lease lapsed between the attempt's start and the request write. */
class LeaseLapsedError extends Error {
  constructor() {
    super('lease lapsed before the request was written');
    this.name = 'LeaseLapsedError';
  }
}

/** The headers xcron sets on every attempt (see Delivery.headers). */
const OWN_HEADERS = new Set(['content-type', 'user-agent', 'x-xcron-task-id', 'x-xcron-fire-id', 'x-xcron-scheduled-time', 'x-xcron-attempt', 'x-xcron-signature']);
const RETRYABLE_STATUS = (s: number): boolean => s === 408 || s === 429 || s >= 500;
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
interface Target {
  origin: string;
  path: string;
}

/** Parsed callback URLs remembered (bounded: cleared when it grows past this). */
const TARGET_CACHE_MAX = 10_000;

export class Delivery {
  private readonly agent: Agent;
  private readonly global: Semaphore;
  private readonly origins = new Map<string, Semaphore>();
  private readonly targets = new Map<string, Target>();
  private readonly stopping = new AbortController();
  private closed: Promise<void> | null = null;
  private active = 0;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly random: () => number;
  private readonly keepBytes: number;

  constructor(private readonly o: DeliveryOptions) {
    this.global = new Semaphore(o.globalConcurrency);
    this.random = o.random ?? Math.random;
    this.keepBytes = o.keepResponseBytes ?? 1024;
    const prewarm = Math.min(o.prewarmConnections ?? 0, o.perOriginConcurrency);
    const connect = o.destinations ? o.destinations.connector({ timeout: 10_000 }) : prewarm > 0 ? buildConnector({ timeout: 10_000 }) : { timeout: 10_000 };
    if (prewarm > 0) {
      this.warm = new WarmConnections({ max: prewarm, perOrigin: o.perOriginConcurrency, idleMs: 10_000, connectedOf: (origin) => Number(this.agent.stats[origin]?.connected ?? 0) });
    }
    this.agent = new Agent({
      connections: o.perOriginConcurrency,
      pipelining: 1,
      keepAliveTimeout: 10_000,
      keepAliveMaxTimeout: 60_000,
      connect: this.warm && typeof connect === 'function' ? this.warm.wrap(connect) : connect,
    });
    this.dueGate = new DueGate(o.clock, this.stopping.signal);
  }

  /** Connections opened ahead of fires waiting for their due time (null: prewarm_connections = 0). */
  private readonly warm: WarmConnections | null = null;
  /** Deliveries handed over ahead of their due time wait here (DeliveryJob.not_before). */
  private readonly dueGate: DueGate;

  /** Deliveries in progress (including ones waiting to retry). */
  inFlight(): number {
    return this.active;
  }

  /** Attempts waiting for a connection (over the global or a per-origin cap) right now. */
  backlog(): number {
    let n = this.global.waiting;
    for (const s of this.origins.values()) n += s.waiting;
    return n;
  }

  /** Delivers one fire with its retry policy. Never throws. */
  async deliver(job: DeliveryJob, hooks: DeliveryHooks = {}): Promise<DeliveryResult> {
    this.active++;
    let attempt = job.first_attempt - 1;
    let last: AttemptOutcome | null = null;
    try {
      if (job.not_before !== undefined && job.not_before > this.o.clock.now()) {
        const origin = job.url.startsWith('target:') ? undefined : this.target(job.url)?.origin;
        const done = origin !== undefined ? this.warm?.expect(origin, job.not_before) : undefined;
        await this.dueGate.until(job.not_before);
        done?.();
        if (this.stopping.signal.aborted) {
          // Stopped before its time: nothing was sent; the run stays open and goes out after a restart.
          const now = this.o.clock.now();
          return { ok: false, status: null, error: 'shutdown before the due time', body: null, attempts: attempt, start_time: now, end_time: now, duration_ms: 0, aborted: true };
        }
      }
      const start = this.o.clock.now();
      for (;;) {
        attempt++;
        const n = attempt;
        // An attempt numbered 2 or more goes out once the run record counts it (see beforeAttempt):
        // written after the backoff, so a crash during the backoff does not count an attempt never sent.
        if (n > 1 && hooks.beforeAttempt && !(await hooks.beforeAttempt(n))) {
          last = LAPSED;
          break;
        }
        // Reported when the request actually starts (after the concurrency caps), not while queued.
        const onStart = hooks.onAttempt ? (): void => hooks.onAttempt!(n) : undefined;
        last = job.failover_urls && job.failover_urls.length > 1 ? await this.attemptFailover(job, attempt, onStart) : await this.attempt(job, attempt, onStart);
        if (last.lapsed) break; // nothing was sent: the slot's owner delivers it
        hooks.onOutcome?.(attempt, last);
        this.o.onAttempt?.({ job, attempt, outcome: last });
        const done = last.ok || !last.retryable || attempt >= Math.max(job.retry.max_attempts, job.first_attempt);
        if (done || this.stopping.signal.aborted) break;
        const wait = Math.max(backoffDelay(job.retry, attempt - job.first_attempt + 1, this.random), last.retry_after_ms ?? 0);
        await sleep(this.o.clock, wait, this.stopping.signal);
        if (this.stopping.signal.aborted) break;
      }
      const end = this.o.clock.now();
      if (last.lapsed) {
        // The attempt was not sent: the count stays at the attempts sent (or recorded as possibly sent).
        return { ok: false, status: null, error: last.error, body: null, attempts: attempt - 1, start_time: start, end_time: end, duration_ms: end - start, aborted: true, lapsed: true };
      }
      const finished = last.ok || !last.retryable || attempt >= Math.max(job.retry.max_attempts, job.first_attempt);
      return {
        ok: last.ok,
        status: last.status,
        error: last.error,
        body: last.body,
        attempts: attempt,
        start_time: start,
        end_time: end,
        duration_ms: end - start,
        aborted: !finished,
      };
    } finally {
      this.active--;
      if (this.active === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /**
   * The request headers as undici's flat [name, value, ...] list: the task's, the extra ones, then
   * xcron's own, a later header replacing an earlier one of the same name (as an object spread
   * would; validation already keeps tasks from setting xcron's or the transport's headers).
   */
  private headers(job: DeliveryJob, attemptNo: number): string[] {
    const h: string[] = [];
    const extra = job.extra_headers;
    if (job.headers) {
      for (const k in job.headers) if (!OWN_HEADERS.has(k) && !(extra && k in extra)) h.push(k, job.headers[k]!);
    }
    if (extra) for (const k in extra) if (!OWN_HEADERS.has(k)) h.push(k, extra[k]!);
    h.push(
      'content-type', 'application/json',
      'user-agent', this.o.userAgent,
      'x-xcron-task-id', job.task_id,
      'x-xcron-fire-id', fireIdOfRun(job.run_id),
      'x-xcron-scheduled-time', String(job.scheduled_time),
      'x-xcron-attempt', String(attemptNo),
    );
    // Signed over the bytes actually sent: a GET carries no body, so its signature covers "".
    if (this.o.signingSecrets.length > 0) h.push('x-xcron-signature', signature(this.o.signingSecrets, Math.floor(this.o.clock.now() / 1000), job.method === 'GET' ? '' : job.body));
    return h;
  }

  /** A callback URL's origin and path, parsed once per URL (null: not a valid URL). */
  private target(raw: string): Target | null {
    let t = this.targets.get(raw);
    if (t === undefined) {
      try {
        const u = new URL(raw);
        t = { origin: u.origin, path: u.pathname + u.search };
      } catch {
        return null;
      }
      if (this.targets.size >= TARGET_CACHE_MAX) this.targets.clear();
      this.targets.set(raw, t);
    }
    return t;
  }

  private originSem(origin: string): Semaphore {
    let s = this.origins.get(origin);
    if (!s) {
      s = new Semaphore(this.o.perOriginConcurrency);
      this.origins.set(origin, s);
    }
    return s;
  }

  /** One attempt over several targets in order; the first success wins. */
  private async attemptFailover(job: DeliveryJob, attemptNo: number, onStart?: () => void): Promise<AttemptOutcome> {
    let last: AttemptOutcome | null = null;
    const errors: string[] = [];
    for (const url of job.failover_urls ?? [job.url]) {
      last = await this.attempt({ ...job, url }, attemptNo, onStart);
      if (last.ok || last.lapsed) return last;
      errors.push(`${url}: ${last.error ?? 'failed'}`);
      if (this.stopping.signal.aborted) break;
    }
    const retryable = last?.retryable ?? true;
    return { ...last!, retryable, error: `all ${errors.length} targets failed: ${errors.join('; ')}`.slice(0, 2000) };
  }

  /**
   * One publish to a queue target (`target:<name>` url), classified like an HTTP attempt: the
   * broker's confirmation is a success (its id kept as the response body), anything else a
   * retryable failure. The lease is checked after the wait for a slot and again right before the
   * message is written.
   */
  private async attemptTarget(job: DeliveryJob, attemptNo: number, onStart?: () => void): Promise<AttemptOutcome> {
    const ref = parseTargetUrl(job.url)!;
    const sem = this.originSem(`target:${ref.name}`);
    await sem.acquire();
    await this.global.acquire();
    const t0 = performance.now();
    try {
      if (this.lapsed(job)) return LAPSED;
      onStart?.();
      const msg = {
        task_id: job.task_id,
        fire_id: job.run_id,
        scheduled_time: job.scheduled_time,
        attempt: attemptNo,
        body: job.body,
        key: ref.key,
        report_token: job.extra_headers?.['x-xcron-report-token'] ?? null,
        timeout_ms: job.timeout_ms,
      };
      const r = this.o.targets
        ? await this.o.targets.send(ref.name, msg, () => !this.lapsed(job))
        : { ok: false, id: null, error: `no queue targets on this node (target ${JSON.stringify(ref.name)})`, permanent: true };
      if (r.lapsed) return LAPSED;
      const duration_ms = Math.round(performance.now() - t0);
      if (r.ok) return { ok: true, retryable: false, status: null, error: null, body: r.id, retry_after_ms: null, duration_ms };
      return { ok: false, retryable: r.permanent !== true, status: null, error: r.error, body: null, retry_after_ms: null, duration_ms, ...(r.timed_out ? { timed_out: true } : {}) };
    } finally {
      this.global.release();
      sem.release();
    }
  }

  /** One HTTP exchange (or queue publish), classified. */
  async attempt(job: DeliveryJob, attemptNo: number, onStart?: () => void): Promise<AttemptOutcome> {
    if (job.url.startsWith('target:')) return this.attemptTarget(job, attemptNo, onStart);
    const url = this.target(job.url);
    if (!url) return { ok: false, retryable: false, status: null, error: `invalid url ${job.url}`, body: null, retry_after_ms: null, duration_ms: 0 };
    const originSem = this.originSem(url.origin);
    await originSem.acquire();
    await this.global.acquire();
    const t0 = performance.now();
    try {
      // The lease, checked after the wait for a connection slot (and again right before the write).
      if (this.lapsed(job)) return LAPSED;
      onStart?.();
      const headers = this.headers(job, attemptNo);
      const sendBody = job.method !== 'GET';
      const res = await this.exchange(url, job, headers, sendBody);
      const { status, body } = res;
      const duration_ms = Math.round(performance.now() - t0);
      if (status >= 200 && status < 300) {
        return { ok: true, retryable: false, status, error: null, body, retry_after_ms: null, duration_ms };
      }
      const retryable = RETRYABLE_STATUS(status);
      return {
        ok: false,
        retryable,
        status,
        error: status >= 300 && status < 400 ? `HTTP ${status} (redirects are not followed)` : `HTTP ${status}`,
        body,
        retry_after_ms: retryable ? parseRetryAfter(res.retryAfter, this.o.clock.now()) : null,
        duration_ms,
      };
    } catch (e) {
      const err = e as Error & { code?: string };
      if (err instanceof LeaseLapsedError) return LAPSED;
      if (err instanceof DestinationRefusedError || err.code === 'XCRON_DESTINATION_REFUSED') {
        // A policy decision, not a transient fault: retrying cannot help.
        return { ok: false, retryable: false, refused: true, status: null, error: err.message, body: null, retry_after_ms: null, duration_ms: Math.round(performance.now() - t0) };
      }
      const timedOut = err.name === 'TimeoutError' || err.code === 'UND_ERR_HEADERS_TIMEOUT' || err.code === 'UND_ERR_BODY_TIMEOUT';
      return {
        ok: false,
        retryable: true,
        status: null,
        ...(timedOut ? { timed_out: true } : {}),
        error: timedOut ? `timeout after ${job.timeout_ms} ms` : `${err.code ?? err.name}: ${err.message}`,
        body: null,
        retry_after_ms: null,
        duration_ms: Math.round(performance.now() - t0),
      };
    } finally {
      this.global.release();
      originSem.release();
    }
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
  private exchange(url: Target, job: DeliveryJob, headers: string[], sendBody: boolean): Promise<{ status: number; body: string | null; retryAfter: string | undefined }> {
    const keepBytes = this.keepBytes;
    // undici calls onConnect right before it writes the request on a connected socket (a new
    // connection is opened first): the latest moment the lease can be checked.
    const gate = this.o.leases !== undefined && job.slot !== undefined && job.slot >= 0 && job.token !== undefined ? this : null;
    const maxBytes = this.o.maxResponseBytes;
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
        this.agent.dispatch(
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

  /** True when the job names a lease (slot, token) that this node no longer holds. */
  lapsed(job: DeliveryJob): boolean {
    const g = this.o.leases;
    if (g === undefined || job.slot === undefined || job.slot < 0 || job.token === undefined) return false;
    return !g.holds(job.slot, job.token);
  }

  /** Waits until no delivery is in flight, or the deadline passes. Retry sleeps are cut short. */
  async drain(timeoutMs: number): Promise<boolean> {
    this.stopping.abort();
    if (this.active === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true)));
    const deadline = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const r = await Promise.race([idle, deadline]);
    clearTimeout(timer);
    return r;
  }

  /** Closes the connection pool. Safe to call twice: returns the same promise. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.stopping.abort();
      this.warm?.close();
      await Promise.all([this.agent.destroy(), this.o.targets?.close()]);
    })();
    return this.closed;
  }
}
