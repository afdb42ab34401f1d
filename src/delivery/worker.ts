/**
 * The delivery worker thread: runs a `Delivery` (undici Agent, retries, caps, SSRF guard, signing)
 * off the main thread, so HTTP work never competes with the scheduler's timers and store commits
 * for the main event loop. Started by `ThreadedDelivery` (src/delivery/threaded.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SystemClock } from '../clock/index.js';
import { LeaseGate } from '../cluster/lease-table.js';
import { createLogger } from '../log.js';
import { Delivery, type DeliveryHooks, type DeliveryResult } from './index.js';
import type { AttemptOutcome } from './types.js';
import { unpackJob, type FromWorker, type ToWorker, type WorkerConfig, type WorkerEvent } from './protocol.js';
import { DestinationPolicy } from './ssrf.js';
import { Targets } from './targets/index.js';

const port = parentPort;
if (!port) throw new Error('src/delivery/worker.ts runs only as a worker thread');
const cfg = workerData as WorkerConfig;
const log = createLogger(cfg.logLevel, cfg.nodeId).child({ module: 'delivery', thread: 'worker' });

let out: WorkerEvent[] = [];
/** Successful results (OK_STRIDE numbers each) and their bodies: see FromWorker. */
let okNums: number[] = [];
let okBodies: (string | null)[] = [];
let flushQueued = false;
const flush = (): void => {
  flushQueued = false;
  if (out.length === 0 && okBodies.length === 0) return;
  const ev = out;
  const ok = okBodies.length === 0 ? null : new Float64Array(okNums);
  const bodies = okBodies;
  out = [];
  okNums = [];
  okBodies = [];
  port.postMessage({ t: 'events', ev, ok, bodies } satisfies FromWorker);
};
const queueFlush = (): void => {
  if (!flushQueued) {
    flushQueued = true;
    setImmediate(flush);
  }
};
/** Events of one event-loop turn travel together. */
const emit = (e: WorkerEvent): void => {
  out.push(e);
  queueFlush();
};
const emitOk = (id: number, r: DeliveryResult, attemptMs: number): void => {
  okNums.push(id, r.status!, r.attempts, r.start_time, r.end_time, attemptMs);
  okBodies.push(r.body);
  queueFlush();
};

/**
 * Attempt starts wait this long: if the delivery ends first, its result says it all. 0 (cluster
 * mode): sent at once, because another node acquiring the slot skips runs marked RUNNING by a live
 * node, and the mark should be written as early as before.
 */
const START_DELAY_MS = cfg.startDelayMs ?? 20;
/** Starts not sent yet: job id → attempt number. */
const starts = new Map<number, number>();
let startTimer: NodeJS.Timeout | null = null;
const flushStarts = (): void => {
  startTimer = null;
  for (const [id, n] of starts) emit([0, id, n]);
  starts.clear();
};

const delivery = new Delivery({
  clock: new SystemClock(),
  log,
  userAgent: cfg.userAgent,
  globalConcurrency: cfg.globalConcurrency,
  perOriginConcurrency: cfg.perOriginConcurrency,
  maxResponseBytes: cfg.maxResponseBytes,
  keepResponseBytes: cfg.keepResponseBytes,
  signingSecrets: cfg.signingSecrets,
  destinations: cfg.destinations ? new DestinationPolicy(cfg.destinations) : undefined,
  leases: cfg.leases ? new LeaseGate(cfg.leases) : undefined,
  targets: cfg.targets && Object.keys(cfg.targets).length > 0 ? new Targets(cfg.targets) : undefined,
});

/** Attempts waiting until the main thread has recorded them: `${id}:${n}` → resolve. */
const recording = new Map<string, (ok: boolean) => void>();
/** Set by 'drain' and 'close': attempts waiting to be recorded are not sent. */
let stopping = false;

function record(id: number, n: number): Promise<boolean> {
  if (stopping) return Promise.resolve(false);
  return new Promise<boolean>((resolve) => {
    recording.set(`${id}:${n}`, resolve);
    emit([3, id, n]);
  });
}

function stopRecording(): void {
  stopping = true;
  for (const r of recording.values()) r(false);
  recording.clear();
}

function run(id: number, job: Parameters<Delivery['deliver']>[0], reportStarts: boolean, recordAttempts: boolean): void {
  // Attempt outcomes go to the main thread's metrics, without the response body (the body travels
  // once, in the result). The last one rides with the result.
  let last: [number, AttemptOutcome] | null = null;
  const hooks: DeliveryHooks = {
    onOutcome: (n, outcome) => {
      // A retry follows the previous attempt: its outcome goes now, in order.
      if (last) emit([1, id, last[0], last[1]]);
      const o = outcome.body === null ? outcome : { ...outcome, body: null };
      // A failure with a retry to come goes at once: the main thread must know the run is between
      // attempts (a sync run then refuses reports) before the next attempt ends.
      if (!outcome.ok && outcome.retryable && n < job.retry.max_attempts) {
        emit([1, id, n, o]);
        last = null;
      } else last = [n, o];
    },
  };
  if (recordAttempts) hooks.beforeAttempt = (n) => record(id, n);
  if (reportStarts) {
    hooks.onAttempt = (n) => {
      if (START_DELAY_MS === 0) {
        emit([0, id, n]);
        return;
      }
      if (starts.has(id)) emit([0, id, starts.get(id)!]); // a retry: the previous start goes now
      starts.set(id, n);
      startTimer ??= setTimeout(flushStarts, START_DELAY_MS);
    };
  }
  delivery
    .deliver(job, hooks)
    .then((result) => {
      if (reportStarts) starts.delete(id);
      // The common case in a few numbers: success at the last attempt, whose outcome follows from the result.
      if (result.ok && !result.aborted && result.status !== null && result.error === null && last && last[0] === result.attempts && last[1].ok && last[1].status === result.status) {
        emitOk(id, result, last[1].duration_ms);
      } else emit(last ? [2, id, result, last[0], last[1]] : [2, id, result]);
      // A 202 (async completion) travels at once: the worker behind it may report within milliseconds.
      if (result.status === 202) flush();
    })
    .catch((err: unknown) => {
      // deliver() never throws by contract; a bug must still answer the main thread.
      log.error({ err, fire_id: job.run_id }, 'delivery failed unexpectedly in the worker thread');
      starts.delete(id);
      const now = Date.now();
      emit([2, id, { ok: false, status: null, error: `internal error: ${(err as Error).message}`, body: null, attempts: job.first_attempt, start_time: now, end_time: now, duration_ms: 0, aborted: true }]);
    });
}

port.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'jobs':
      for (const packed of m.jobs) {
        const [id, job, starts, recordAttempts] = unpackJob(packed);
        run(id, job, starts, recordAttempts === true);
      }
      break;
    case 'recorded':
      for (let i = 0; i < m.r.length; i += 3) {
        const key = `${m.r[i]!}:${m.r[i + 1]!}`;
        const resolve = recording.get(key);
        recording.delete(key);
        resolve?.(m.r[i + 2] === 1);
      }
      break;
    case 'drain':
      stopRecording();
      void delivery.drain(m.timeoutMs).then((ok) => {
        // Results of the drained deliveries go first (one port: messages keep their order).
        setImmediate(() => {
          flush();
          port.postMessage({ t: 'drained', ok } satisfies FromWorker);
        });
      });
      break;
    case 'close':
      stopRecording();
      void delivery.close().finally(() => {
        flush();
        port.postMessage({ t: 'closed' } satisfies FromWorker);
      });
      break;
  }
});
