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
import type { AttemptEvent, DeliveryHooks, DeliveryJob, DeliveryResult } from './index.js';
import type { FromWorker, JobItem, ToWorker, WorkerConfig } from './protocol.js';

export interface DeliveryService {
  deliver(job: DeliveryJob, hooks?: DeliveryHooks): Promise<DeliveryResult>;
  inFlight(): number;
  drain(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
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
}

export class ThreadedDelivery implements DeliveryService {
  private worker!: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private outbox: JobItem[] = [];
  private flushQueued = false;
  private closing = false;
  private drainWaiter: ((ok: boolean) => void) | null = null;
  private closeWaiter: (() => void) | null = null;
  private restarts = 0;
  private readonly config: WorkerConfig;

  constructor(private readonly o: ThreadedDeliveryOptions) {
    const { log: _log, onAttempt: _onAttempt, workerUrl: _url, ...config } = o;
    this.config = config;
    this.start();
  }

  private start(): void {
    // Under --cpu-prof-name=<f>, the worker writes its own profile next to the main thread's.
    const execArgv = process.execArgv.map((a) => (a.startsWith('--cpu-prof-name=') ? a.replace(/(\.cpuprofile)?$/, '.delivery-worker.cpuprofile') : a));
    const w = new Worker(this.o.workerUrl ?? new URL('./worker.js', import.meta.url), { workerData: this.config, name: 'xcron-delivery', execArgv });
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
      for (const [id, p] of this.pending) again.push([id, p.job, p.hooks.onAttempt !== undefined]);
      if (again.length > 0) this.post({ t: 'jobs', jobs: again });
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
    return new Promise<DeliveryResult>((resolve) => {
      this.pending.set(id, { job, hooks, resolve });
      this.outbox.push([id, job, hooks.onAttempt !== undefined]);
      if (!this.flushQueued) {
        // Every job handed over in this turn (a whole committed batch) travels in one message.
        this.flushQueued = true;
        queueMicrotask(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushQueued = false;
    if (this.outbox.length === 0) return;
    const jobs = this.outbox;
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
          } else if (e[0] === 1) {
            try {
              this.o.onAttempt?.({ job: p.job, attempt: e[2], outcome: e[3] });
            } catch (err) {
              this.o.log.error({ err }, 'delivery attempt observer failed');
            }
          } else {
            this.pending.delete(e[1]);
            p.resolve(e[2]);
          }
        }
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

  inFlight(): number {
    return this.pending.size;
  }

  /** Stops retries and waits until no delivery is in flight, or the deadline passes. */
  drain(timeoutMs: number): Promise<boolean> {
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

  /** Closes the worker's connections and ends the thread. Unfinished deliveries resolve as aborted. */
  async close(): Promise<void> {
    if (this.closing) return;
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
