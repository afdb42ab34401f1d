/**
 * The messages between the main thread and the delivery worker thread (src/delivery/worker.ts).
 * Both directions are batched: one postMessage carries every item produced in one turn of the
 * sender's event loop, so a burst of 20,000 fires costs tens of messages, not 20,000.
 */
import type { AttemptOutcome, DeliveryJob, DeliveryOptions, DeliveryResult } from './index.js';
import type { DestinationPolicyOptions } from './ssrf.js';

/** What the worker needs to build its Delivery (plain data: it crosses the thread boundary). */
export type WorkerConfig = Pick<DeliveryOptions, 'userAgent' | 'globalConcurrency' | 'perOriginConcurrency' | 'maxResponseBytes' | 'keepResponseBytes' | 'signingSecrets'> & {
  /** The SSRF guard's options (the worker builds its own DestinationPolicy). None: no restriction. */
  destinations?: Omit<DestinationPolicyOptions, 'resolve'>;
  logLevel: string;
  nodeId: string;
  /** How long an attempt start waits before it is sent (a fast result makes it unnecessary). Default 20; 0: at once. */
  startDelayMs?: number;
};

/** [id, job, report attempt starts?] */
export type JobItem = [number, DeliveryJob, boolean];

export type ToWorker =
  | { t: 'jobs'; jobs: JobItem[] }
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
export type WorkerEvent = StartEvent | AttemptItem | ResultEvent;

export type FromWorker = { t: 'events'; ev: WorkerEvent[] } | { t: 'drained'; ok: boolean } | { t: 'closed' };
