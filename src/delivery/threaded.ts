/**
 * ThreadedDelivery: the `Delivery` API, with the HTTP work done by a worker thread
 * (src/delivery/worker.ts). The main thread keeps the scheduler's timers, the store commits and
 * the API; the worker owns the undici Agent, the concurrency caps, retries and backoff. Jobs and
 * outcomes cross in batches (one message per event-loop turn each way).
 *
 * If the worker dies (a bug, an out-of-memory in the thread), a new one is started and every
 * delivery it had not finished is handed to it again: the same fire id, at least once.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { workerExecArgv } from '../worker-args.js';
import type { AttemptEvent, DeliveryHooks, DeliveryJob, DeliveryResult } from './types.js';
import { OK_STRIDE, packJob, type FromWorker, type JobItem, type ToWorker, type WorkerConfig } from './protocol.js';

export interface DeliveryService {
  deliver(job: DeliveryJob, hooks?: DeliveryHooks): Promise<DeliveryResult>;
  inFlight(): number;
  drain(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
  /** Gives back matching deliveries not started yet (they resolve as aborted). */
  cancelWaiting?(match: (job: DeliveryJob) => boolean): number;
  /** Callbacks waiting for a connection (over the concurrency caps) right now. */
  backlog?(): number;
}

export interface ThreadedDeliveryOptions extends WorkerConfig {
  log: Logger;
  onAttempt?: (e: AttemptEvent) => void;
  /** The worker script (default: worker.js next to this module). */
  workerUrl?: URL;
}

interface Pending {
  job: DeliveryJob;
  hooks: DeliveryHooks;
  resolve: (r: DeliveryResult) => void;
  lane: Lane;
  /** Handed to the worker (false while it waits in its lane's queue on this thread). */
  posted: boolean;
}

/**
 * The deliveries of one origin: at most `window` of them are in the worker at a time, the rest
 * wait here as plain entries. A burst of 20,000 fires would otherwise park 20,000 suspended
 * requests in the worker, whose heap and garbage collector then slow every exchange.
 */
interface Lane {
  origin: string;
  posted: number;
  queue: JobItem[];
  head: number;
}

/** Origins remembered per callback URL (bounded: cleared when it grows past this). */
const ORIGIN_CACHE_MAX = 10_000;

export class ThreadedDelivery implements DeliveryService {
  private worker!: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private outbox: JobItem[] = [];
  private flushQueued = false;
  private closing = false;
  private closed: Promise<void> | null = null;
  private drainWaiter: ((ok: boolean) => void) | null = null;
  private closeWaiter: (() => void) | null = null;
  private restarts = 0;
  private readonly config: WorkerConfig;
  private readonly lanes = new Map<string, Lane>();
  private readonly origins = new Map<string, string>();
  private readonly window: number;

  constructor(private readonly o: ThreadedDeliveryOptions) {
    const { log: _log, onAttempt: _onAttempt, workerUrl: _url, ...config } = o;
    this.config = config;
    // Twice the per-origin cap: the worker always has the next request ready when one finishes.
    this.window = Math.max(16, 2 * config.perOriginConcurrency);
    this.start();
  }

  private start(): void {
    const execArgv = workerExecArgv('delivery-worker');
    // A young generation of 96 MB (32 MB semi-spaces, twice V8's default): a burst keeps thousands
    // of requests' short-lived objects alive at once, and with the default most were copied by
    // several scavenges. Only this thread: on the main thread the larger size doubled the scavenge
    // pauses under sustained load (event-loop lag; README, Performance). A --max-semi-space-size
    // given to node applies to every thread and takes precedence.
    const w = new Worker(this.o.workerUrl ?? new URL('./worker.js', import.meta.url), { workerData: this.config, name: 'xcron-delivery', execArgv, resourceLimits: { maxYoungGenerationSizeMb: 96 } });
    this.worker = w;
    w.on('message', (m: FromWorker) => this.onMessage(m));
    w.on('error', (err) => this.o.log.error({ err }, 'delivery worker thread failed'));
    w.on('exit', (code) => {
      if (this.worker !== w) return;
      if (this.closing) {
        this.closeWaiter?.();
        return;
      }
      // Unexpected: start a new worker and hand it every unfinished delivery (same fire ids).
      this.restarts++;
      this.o.log.error({ code, unfinished: this.pending.size, restarts: this.restarts }, 'delivery worker thread exited; starting a new one and redelivering its unfinished runs');
      this.start();
      const again: JobItem[] = [];
      for (const [id, p] of this.pending) if (p.posted) again.push([id, p.job, p.hooks.onAttempt !== undefined, p.hooks.beforeAttempt !== undefined]);
      if (again.length > 0) this.post({ t: 'jobs', jobs: again.map(packJob) });
      if (this.drainWaiter) this.post({ t: 'drain', timeoutMs: 0 });
    });
  }

  /** Times the worker thread was restarted after dying. */
  restartCount(): number {
    return this.restarts;
  }

  private post(m: ToWorker): void {
    this.worker.postMessage(m);
  }

  deliver(job: DeliveryJob, hooks: DeliveryHooks = {}): Promise<DeliveryResult> {
    const id = this.nextId++;
    const lane = this.laneOf(job.url);
    return new Promise<DeliveryResult>((resolve) => {
      const item: JobItem = [id, job, hooks.onAttempt !== undefined, hooks.beforeAttempt !== undefined];
      const p: Pending = { job, hooks, resolve, lane, posted: false };
      this.pending.set(id, p);
      if (lane.posted < this.window && lane.head === lane.queue.length) this.hand(p, item);
      else lane.queue.push(item);
    });
  }

  /** The lane of a callback URL's origin (an unparsable URL gets its own: the worker refuses it). */
  private laneOf(url: string): Lane {
    let origin = this.origins.get(url);
    if (origin === undefined) {
      try {
        // A queue target's lane is its name (new URL() gives every `target:` URL the origin "null").
        origin = url.startsWith('target:') ? url.split('?', 1)[0]! : new URL(url).origin;
      } catch {
        origin = url;
      }
      if (this.origins.size >= ORIGIN_CACHE_MAX) this.origins.clear();
      this.origins.set(url, origin);
    }
    let lane = this.lanes.get(origin);
    if (!lane) {
      lane = { origin, posted: 0, queue: [], head: 0 };
      this.lanes.set(origin, lane);
    }
    return lane;
  }

  /** Queues a job for the worker; every job handed over in one turn travels in one message. */
  private hand(p: Pending, item: JobItem): void {
    p.posted = true;
    p.lane.posted++;
    this.outbox.push(item);
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => this.flush());
    }
  }

  /** A job of `lane` finished in the worker: hand over the next one waiting. */
  private release(lane: Lane): void {
    lane.posted--;
    this.handWaiting(lane, this.window);
  }

  /** Hands over the lane's waiting jobs while fewer than `limit` are in the worker. */
  private handWaiting(lane: Lane, limit: number): void {
    while (lane.head < lane.queue.length && lane.posted < limit) {
      const item = lane.queue[lane.head]!;
      lane.queue[lane.head++] = undefined as unknown as JobItem;
      const p = this.pending.get(item[0]);
      if (p) this.hand(p, item);
    }
    if (lane.head === lane.queue.length) {
      lane.queue = [];
      lane.head = 0;
      if (lane.posted === 0) this.lanes.delete(lane.origin);
    } else if (lane.head > 1024 && lane.head * 2 > lane.queue.length) {
      lane.queue = lane.queue.slice(lane.head);
      lane.head = 0;
    }
  }

  private flush(): void {
    this.flushQueued = false;
    if (this.outbox.length === 0) return;
    const jobs = this.outbox.map(packJob);
    this.outbox = [];
    this.post({ t: 'jobs', jobs });
  }

  private onMessage(m: FromWorker): void {
    switch (m.t) {
      case 'events':
        for (const e of m.ev) {
          const p = this.pending.get(e[1]);
          if (!p) continue;
          if (e[0] === 0) {
            try {
              p.hooks.onAttempt?.(e[2]);
            } catch (err) {
              this.o.log.error({ err }, 'delivery attempt hook failed');
            }
          } else if (e[0] === 3) {
            this.recordAttempt(e[1], e[2], p);
          } else if (e[0] === 1) {
            try {
              this.o.onAttempt?.({ job: p.job, attempt: e[2], outcome: e[3] });
            } catch (err) {
              this.o.log.error({ err }, 'delivery attempt observer failed');
            }
          } else {
            if (e.length === 5) {
              try {
                this.o.onAttempt?.({ job: p.job, attempt: e[3], outcome: e[4] });
              } catch (err) {
                this.o.log.error({ err }, 'delivery attempt observer failed');
              }
            }
            this.pending.delete(e[1]);
            this.release(p.lane);
            p.resolve(e[2]);
          }
        }
        if (m.ok !== null) this.onSuccesses(m.ok, m.bodies);
        break;
      case 'drained': {
        const w = this.drainWaiter;
        this.drainWaiter = null;
        w?.(m.ok && this.pending.size === 0);
        break;
      }
      case 'closed':
        void this.worker.terminate();
        break;
    }
  }

  /** The worker waits to send attempt `n` until the run record counts it (DeliveryHooks.beforeAttempt). */
  private recordAttempt(id: number, n: number, p: Pending): void {
    const answer = (ok: boolean): void => {
      this.recorded.push(id, n, ok ? 1 : 0);
      if (this.recorded.length === 3) {
        queueMicrotask(() => {
          const r = this.recorded;
          this.recorded = [];
          this.post({ t: 'recorded', r });
        });
      }
    };
    const hook = p.hooks.beforeAttempt;
    if (!hook) {
      answer(true);
      return;
    }
    hook(n).then(answer, (err: unknown) => {
      this.o.log.error({ err }, 'delivery attempt record hook failed');
      answer(false);
    });
  }

  private recorded: number[] = [];

  /** The successful results of one message (see FromWorker): each result and its last attempt's outcome, rebuilt. */
  private onSuccesses(ok: Float64Array, bodies: (string | null)[]): void {
    for (let i = 0, j = 0; i < ok.length; i += OK_STRIDE, j++) {
      const id = ok[i]!;
      const p = this.pending.get(id);
      if (!p) continue;
      const status = ok[i + 1]!;
      const attempts = ok[i + 2]!;
      const start_time = ok[i + 3]!;
      const end_time = ok[i + 4]!;
      if (this.o.onAttempt) {
        try {
          this.o.onAttempt({ job: p.job, attempt: attempts, outcome: { ok: true, retryable: false, status, error: null, body: null, retry_after_ms: null, duration_ms: ok[i + 5]! } });
        } catch (err) {
          this.o.log.error({ err }, 'delivery attempt observer failed');
        }
      }
      this.pending.delete(id);
      this.release(p.lane);
      p.resolve({ ok: true, status, error: null, body: bodies[j] ?? null, attempts, start_time, end_time, duration_ms: end_time - start_time, aborted: false });
    }
  }

  inFlight(): number {
    return this.pending.size;
  }

  /**
   * Callbacks waiting on this thread for room in the worker. The worker holds up to twice the
   * per-origin cap of each origin, so a non-zero backlog means every connection is busy.
   */
  backlog(): number {
    let n = 0;
    for (const lane of this.lanes.values()) n += lane.queue.length - lane.head;
    return n;
  }

  /** Stops retries and waits until no delivery is in flight, or the deadline passes. */
  drain(timeoutMs: number): Promise<boolean> {
    // Everything still waiting in a lane goes to the worker now: draining covers it too.
    for (const lane of this.lanes.values()) this.handWaiting(lane, Infinity);
    this.flush();
    if (this.pending.size === 0 && this.drainWaiter === null) {
      // Still tell the worker, so retry sleeps started later are cut short too.
      this.post({ t: 'drain', timeoutMs: 0 });
      return Promise.resolve(true);
    }
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.drainWaiter = null;
        resolve(false);
      }, timeoutMs + 1000);
      this.drainWaiter = (ok) => {
        clearTimeout(timer);
        resolve(ok);
      };
      this.post({ t: 'drain', timeoutMs });
    });
  }

  /**
   * Gives back the deliveries still waiting on this thread (not handed to the worker yet) whose
   * job matches: they resolve as aborted (not attempted, left for redelivery). Those already in
   * the worker go on. Returns how many were given back.
   */
  cancelWaiting(match: (job: DeliveryJob) => boolean): number {
    let n = 0;
    const now = Date.now();
    for (const lane of this.lanes.values()) {
      if (lane.head === lane.queue.length) continue;
      const keep: JobItem[] = [];
      for (let i = lane.head; i < lane.queue.length; i++) {
        const item = lane.queue[i]!;
        const p = this.pending.get(item[0]);
        if (!p || !match(item[1])) {
          keep.push(item);
          continue;
        }
        this.pending.delete(item[0]);
        n++;
        p.resolve({ ok: false, status: null, error: 'given back: slot lost', body: null, attempts: p.job.first_attempt - 1, start_time: now, end_time: now, duration_ms: 0, aborted: true });
      }
      lane.queue = keep;
      lane.head = 0;
    }
    return n;
  }

  /**
   * Closes the worker's connections and ends the thread. Unfinished deliveries resolve as aborted.
   * Safe to call twice: returns the same promise.
   */
  close(): Promise<void> {
    this.closed ??= this.closeOnce();
    return this.closed;
  }

  private async closeOnce(): Promise<void> {
    this.closing = true;
    const exited = new Promise<void>((r) => {
      this.closeWaiter = r;
    });
    this.post({ t: 'close' });
    const force = setTimeout(() => void this.worker.terminate(), 5000);
    await exited;
    clearTimeout(force);
    const now = Date.now();
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.resolve({ ok: false, status: null, error: 'shutdown', body: null, attempts: p.job.first_attempt - 1, start_time: now, end_time: now, duration_ms: 0, aborted: true });
    }
  }
}
