/**
 * The delivery's vocabulary: a job (one fire's callback with its retry policy), the outcome of one
 * attempt, the result of a whole delivery, the hooks a caller hangs on it and the options of the
 * Delivery (src/delivery/index.ts). Types only, plus the outcome of an attempt that was not sent.
 */
import type { Logger } from 'pino';
import type { Clock } from '../clock/index.js';
import type { LeaseGate } from '../cluster/lease-table.js';
import type { HttpMethod, RetryPolicy } from '../task/index.js';
import type { Targets } from './targets/index.js';
import type { DestinationPolicy } from './ssrf.js';

export interface DeliveryOptions {
  clock: Clock;
  log: Logger;
  userAgent: string;
  globalConcurrency: number;
  perOriginConcurrency: number;
  /** Response bytes read at most; the rest is discarded and the connection closed. */
  maxResponseBytes: number;
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
export const LAPSED: AttemptOutcome = { ok: false, retryable: false, status: null, error: 'not sent: lease lapsed', body: null, retry_after_ms: null, duration_ms: 0, lapsed: true };
