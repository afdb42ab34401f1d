/**
 * Delivery: POSTs callbacks over pooled keep-alive connections (undici Agent), with a timeout,
 * retries (exponential backoff, full jitter, Retry-After), optional HMAC signing, a global
 * concurrency cap and a per-origin cap. Outcomes are values; only bugs throw.
 *
 * A request first takes a slot of its origin, then a global slot: a receiver that hangs fills only
 * its own origin's slots, and callbacks to other receivers keep flowing.
 *
 * The job and outcome types are in types.ts, one HTTP exchange in http.ts, one queue publish in
 * queue-attempt.ts.
 */
import { Agent } from 'undici';
import { sleep } from '../clock/index.js';
import { parseTargetUrl } from '../task/index.js';
import { fireIdOfRun } from '../task/types.js';
import { backoffDelay, exchange, LeaseLapsedError, OWN_HEADERS, parseRetryAfter, RETRYABLE_STATUS, signature, type ExchangeLimits, type Target } from './http.js';
import { publishAttempt } from './queue-attempt.js';
import { Semaphore } from './semaphore.js';
import { DestinationRefusedError } from './ssrf.js';
import { LAPSED, type AttemptOutcome, type DeliveryHooks, type DeliveryJob, type DeliveryOptions, type DeliveryResult } from './types.js';

export type { AttemptEvent, AttemptOutcome, DeliveryHooks, DeliveryJob, DeliveryOptions, DeliveryResult } from './types.js';
export { backoffDelay, parseRetryAfter, rawHeader, signature } from './http.js';

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
  private readonly limits: ExchangeLimits;

  constructor(private readonly o: DeliveryOptions) {
    this.global = new Semaphore(o.globalConcurrency);
    this.random = o.random ?? Math.random;
    this.limits = { maxBytes: o.maxResponseBytes, keepBytes: o.keepResponseBytes ?? 1024 };
    this.agent = new Agent({
      connections: o.perOriginConcurrency,
      pipelining: 1,
      keepAliveTimeout: 10_000,
      keepAliveMaxTimeout: 60_000,
      connect: o.destinations ? o.destinations.connector({ timeout: 10_000 }) : { timeout: 10_000 },
    });
  }

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
    const start = this.o.clock.now();
    let attempt = job.first_attempt - 1;
    let last: AttemptOutcome | null = null;
    try {
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
   * One publish to a queue target (`target:<name>` url), classified like an HTTP attempt (see
   * queue-attempt.ts). The lease is checked after the wait for a slot and again right before the
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
      // Signed like an HTTP callback (X-Xcron-Signature) when signing secrets are set.
      const sig = this.o.signingSecrets.length > 0 ? signature(this.o.signingSecrets, Math.floor(this.o.clock.now() / 1000), job.body) : null;
      return await publishAttempt(this.o.targets, ref, job, attemptNo, () => !this.lapsed(job), t0, sig);
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
      // undici calls onConnect right before it writes the request on a connected socket (a new
      // connection is opened first): the latest moment the lease can be checked.
      const gate = this.o.leases !== undefined && job.slot !== undefined && job.slot >= 0 && job.token !== undefined ? this : null;
      const res = await exchange(this.agent, this.limits, gate, url, job, headers, sendBody);
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
      await Promise.all([this.agent.destroy(), this.o.targets?.close()]);
    })();
    return this.closed;
  }
}
