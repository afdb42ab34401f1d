/**
 * The messages between the main thread and the delivery worker thread (src/delivery/worker.ts).
 * Both directions are batched: one postMessage carries every item produced in one turn of the
 * sender's event loop, so a burst of 20,000 fires costs tens of messages, not 20,000.
 *
 * Jobs and successful results travel as flat values, not objects: the structured clone writes an
 * object's every property name and the receiver rebuilds the object key by key. Measured with
 * v8.serialize/deserialize, a job took 1.7 + 3.3 µs as an object and 0.45 + 0.8 µs as a flat
 * array; a result 1.2 + 2.7 µs as objects and about 0.1 µs as six numbers in a Float64Array.
 */
import type { HttpMethod } from '../task/index.js';
import type { AttemptOutcome, DeliveryJob, DeliveryOptions, DeliveryResult } from './types.js';
import type { DestinationPolicyOptions } from './ssrf.js';
import type { TargetConfig } from './targets/index.js';

/** What the worker needs to build its Delivery (plain data: it crosses the thread boundary). */
export type WorkerConfig = Pick<DeliveryOptions, 'userAgent' | 'globalConcurrency' | 'perOriginConcurrency' | 'maxResponseBytes' | 'keepResponseBytes' | 'signingSecrets'> & {
  /** The SSRF guard's options (the worker builds its own DestinationPolicy). None: no restriction. */
  destinations?: Omit<DestinationPolicyOptions, 'resolve'>;
  logLevel: string;
  nodeId: string;
  /** How long an attempt start waits before it is sent (a fast result makes it unnecessary). Default 20; 0: at once. */
  startDelayMs?: number;
  /** The lease table (cluster mode): jobs naming a slot and token go out only while that lease is held. */
  leases?: SharedArrayBuffer;
  /** The configured queue targets (`[targets.<name>]`), built in the worker. */
  targets?: Record<string, TargetConfig>;
};

/** [id, job, report attempt starts?, record attempts numbered 2 or more before they go out?] */
export type JobItem = [number, DeliveryJob, boolean, boolean?];

/** Flags of a packed job: report attempt starts; record attempts 2+ first (DeliveryHooks.beforeAttempt). */
export const REPORT_STARTS = 1;
export const RECORD_ATTEMPTS = 2;

/**
 * A job as it crosses to the worker: [id, flags, run_id, task_id, scheduled_time,
 * url, method, body, timeout_ms, max_attempts, backoff_ms, max_backoff_ms, first_attempt, headers,
 * extra_headers, failover_urls, slot, lease token], the header maps flattened to
 * [name, value, name, value, ...], slot -1 when the job names no lease.
 */
export type PackedJob = [
  number, number, string, string, number,
  string, HttpMethod, string, number, number, number, number, number,
  string[] | null, string[] | null, readonly string[] | null, number, number,
];

function flatHeaders(h: Record<string, string> | null | undefined): string[] | null {
  if (!h) return null;
  const out: string[] = [];
  for (const k in h) out.push(k, h[k]!);
  return out;
}

function headerMap(flat: string[] | null): Record<string, string> | null {
  if (flat === null) return null;
  const h: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) h[flat[i]!] = flat[i + 1]!;
  return h;
}

export function packJob([id, job, reportStarts, recordAttempts]: JobItem): PackedJob {
  const r = job.retry;
  return [
    id, (reportStarts ? REPORT_STARTS : 0) | (recordAttempts === true ? RECORD_ATTEMPTS : 0), job.run_id, job.task_id, job.scheduled_time,
    job.url, job.method, job.body, job.timeout_ms, r.max_attempts, r.backoff_ms, r.max_backoff_ms, job.first_attempt,
    flatHeaders(job.headers), flatHeaders(job.extra_headers), job.failover_urls ?? null, job.slot ?? -1, job.token ?? 0,
  ];
}

export function unpackJob(p: PackedJob): JobItem {
  const job: DeliveryJob = {
    run_id: p[2],
    task_id: p[3],
    scheduled_time: p[4],
    url: p[5],
    method: p[6],
    headers: headerMap(p[13]),
    body: p[7],
    timeout_ms: p[8],
    retry: { max_attempts: p[9], backoff_ms: p[10], max_backoff_ms: p[11] },
    first_attempt: p[12],
    failover_urls: p[15] ?? undefined,
    extra_headers: headerMap(p[14]) ?? undefined,
  };
  if (p[16] >= 0) {
    job.slot = p[16];
    job.token = p[17];
  }
  return [p[0], job, (p[1] & REPORT_STARTS) !== 0, (p[1] & RECORD_ATTEMPTS) !== 0];
}

export type ToWorker =
  | { t: 'jobs'; jobs: PackedJob[] }
  /** Answers to RecordEvents: [id, attempt number, recorded (1) or not to be sent (0)], flat. */
  | { t: 'recorded'; r: number[] }
  /** Stop retrying, wait for the exchanges in progress (up to timeoutMs), answer 'drained'. */
  | { t: 'drain'; timeoutMs: number }
  | { t: 'close' };

/**
 * An attempt started: [0, id, attempt number]. Sent only if the delivery is still going
 * START_DELAY_MS later (a fast callback's result carries its attempt count anyway).
 */
export type StartEvent = [0, number, number];
/** An attempt ended (for metrics; the outcome's body is left out): [1, id, attempt number, outcome]. */
export type AttemptItem = [1, number, number, AttemptOutcome];
/**
 * The delivery finished: [2, id, result], with its last attempt's outcome when that was not sent
 * on its own (the common case: one event per callback instead of three).
 */
export type ResultEvent = [2, number, DeliveryResult] | [2, number, DeliveryResult, number, AttemptOutcome];
/**
 * Attempt number n (2 or more) may go out once the run record counts it: [3, id, n]. The main
 * thread answers with a 'recorded' message (DeliveryHooks.beforeAttempt).
 */
export type RecordEvent = [3, number, number];
export type WorkerEvent = StartEvent | AttemptItem | ResultEvent | RecordEvent;

/** Numbers per successful result in `ok`: id, status, attempts, start_time, end_time, last attempt's duration_ms. */
export const OK_STRIDE = 6;

/**
 * `ev`: events in order. `ok`: deliveries that succeeded at their last attempt with no event of
 * their own pending, OK_STRIDE numbers each, their response bodies in `bodies` (the result is
 * ok, not aborted, error null; the attempt's outcome ok, not retryable, status and error the
 * result's). A result is a delivery's last event, so `ev` is read before `ok`.
 */
export type FromWorker = { t: 'events'; ev: WorkerEvent[]; ok: Float64Array | null; bodies: (string | null)[] } | { t: 'drained'; ok: boolean } | { t: 'closed' };
