/**
 * In-process xcron for the management tests: the node createXcron (src/xcron.ts) builds from a
 * config, the way src/main.ts runs it: a real SQLite file in a temp dir, LocalOwnership on its
 * epoch, the real Delivery (undici, real HTTP), the real Scheduler on the SystemClock, and the Hono
 * app driven through `app.request()`. Callbacks go to real node:http receivers
 * (test/helpers/receiver.ts).
 *
 * `restart()` stops the node (its ordered shutdown) and starts a new one on the same data file (a
 * new process would do the same: a new epoch, recovery of the outbox, the misfire policy for ticks
 * missed while it was down).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Hono } from 'hono';
import { pino } from 'pino';
import { SystemClock } from '../../src/clock/index.js';
import type { Ownership } from '../../src/cluster/index.js';
import type { DeliveryService } from '../../src/delivery/threaded.js';
import type { AlertEvent, FinishedEvent, Scheduler } from '../../src/scheduler/index.js';
import { SqliteTaskStore } from '../../src/store/sqlite.js';
import type { RetryPolicy } from '../../src/task/index.js';
import { createXcron, type Xcron } from '../../src/xcron.js';
import { send, type AppResponse } from '../helpers/app.js';
import { testConfig } from '../helpers/xcron.js';

export const NODE_ID = 'manage-node';

export interface HarnessOptions {
  /** Reuse a data dir (restart). Default: a new temp dir. */
  dir?: string;
  /** Default 60 s: late ticks are fired, never skipped, unless a test asks for a small threshold. */
  misfireThresholdMs?: number;
  alertUrl?: string;
  maxConsecutiveFailures?: number;
  defaultRetry?: RetryPolicy;
  defaultTimeoutMs?: number;
}

export interface RunView {
  run_id: string;
  task_id: string;
  node: string | null;
  scheduled_time: number;
  start_time: number | null;
  end_time: number | null;
  attempts: number;
  status: string;
  http_status: number | null;
  error: string | null;
  duration_ms: number | null;
  response_body: string | null;
  shards?: { index: number; url: string; ok: boolean; attempts: number; http_status: number | null; error: string | null }[];
}

export interface TaskData {
  task_id: string;
  type: number;
  format: string;
  run_count: number;
  state: string;
  next_fire_time: number | null;
  last_fire_time: number | null;
  last_status: string | null;
  callback: Record<string, unknown>;
  [k: string]: unknown;
}

export class Harness {
  readonly alerts: AlertEvent[] = [];
  readonly finished: FinishedEvent[] = [];
  private closed = false;
  readonly store: SqliteTaskStore;
  readonly ownership: Ownership;
  readonly delivery: DeliveryService;
  readonly scheduler: Scheduler;
  readonly app: Hono;

  private constructor(
    readonly dir: string,
    readonly opts: HarnessOptions,
    readonly node: Xcron,
  ) {
    if (!(node.store instanceof SqliteTaskStore)) throw new Error('the harness runs the store on the test thread ([store] worker_thread = false)');
    this.store = node.store;
    this.ownership = node.ownership;
    this.delivery = node.delivery;
    this.scheduler = node.scheduler;
    this.app = node.app;
    this.scheduler.on('alert', (a) => this.alerts.push(a));
    this.scheduler.on('finished', (f) => this.finished.push(f));
  }

  get dbFile(): string {
    return join(this.dir, 'xcron.db');
  }

  static async start(opts: HarnessOptions = {}): Promise<Harness> {
    const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'xcron-manage-'));
    const retry = opts.defaultRetry ?? { max_attempts: 1, backoff_ms: 10, max_backoff_ms: 100 };
    const cfg = testConfig(dir, {
      node_id: NODE_ID,
      scheduler: { lookahead_ms: 10_000, scan_interval_ms: 500, max_sleep_ms: 1000, misfire_threshold_ms: opts.misfireThresholdMs ?? 60_000, batch_size: 100, max_loaded: 100_000, commit_ahead_ms: 0 },
      delivery: {
        user_agent: 'xcron/test',
        global_concurrency: 256,
        per_origin_concurrency: 64,
        max_response_bytes: 65_536,
        timeout_ms: opts.defaultTimeoutMs ?? 10_000,
        max_attempts: retry.max_attempts,
        backoff_ms: retry.backoff_ms,
        max_backoff_ms: retry.max_backoff_ms,
      },
      alert: { webhook_url: opts.alertUrl ?? '', max_consecutive_failures: opts.maxConsecutiveFailures ?? 0 },
      cluster: { slots: 16 },
      shutdown_timeout_ms: 5000,
    });
    const node = await createXcron(cfg, { clock: new SystemClock(), log: pino({ level: 'silent' }), processMetrics: false });
    await node.start();
    return new Harness(dir, opts, node);
  }

  /** Stops the node: its ordered shutdown (timers, drain deliveries, flush history, release slots, close). */
  async stop(): Promise<void> {
    this.closed = true;
    await this.node.stop();
  }

  /** Stops and removes the data dir. */
  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** `await using h = await Harness.start()`: closes when the scope ends. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** A new instance on the same data file (this one must be stopped first). */
  restart(extra: HarnessOptions = {}): Promise<Harness> {
    if (!this.closed) throw new Error('restart: stop() first');
    return Harness.start({ ...this.opts, ...extra, dir: this.dir });
  }

  // ---- API ----

  req<T = unknown>(path: string, json?: unknown): Promise<AppResponse<T>> {
    return send<T>(this.app, path, json === undefined ? {} : { json });
  }

  /** A call that must answer code 0; returns data. */
  async ok<T = unknown>(path: string, json?: unknown): Promise<T> {
    const r = await this.req<T>(path, json);
    if (r.status !== 200 || r.body.code !== 0) throw new Error(`${path} failed: HTTP ${r.status} ${r.text}`);
    return r.body.data;
  }

  async create(body: Record<string, unknown>): Promise<string> {
    const d = await this.ok<{ task_id: string }>('/xcron/createTask', body);
    return d.task_id;
  }

  query(id: string): Promise<TaskData> {
    return this.ok<TaskData>(`/xcron/queryTask?task_id=${encodeURIComponent(id)}`);
  }

  async trigger(id: string): Promise<{ task_id: string; run_id: string; scheduled_time: number }> {
    return this.ok('/xcron/triggerTask', { task_id: id });
  }

  /** Every run of a task (all pages), newest first. */
  async runs(id: string): Promise<RunView[]> {
    const out: RunView[] = [];
    let cursor: string | null = null;
    for (;;) {
      const q: string = `/xcron/taskRuns?task_id=${encodeURIComponent(id)}&limit=1000${cursor ? `&cursor=${cursor}` : ''}`;
      const d: { runs: RunView[]; next_cursor: string | null } = await this.ok(q);
      out.push(...d.runs);
      if (!d.next_cursor) return out;
      cursor = d.next_cursor;
    }
  }

  /** Resolves with the first alert (already raised or still to come) matching pred. */
  waitAlert(pred: (a: AlertEvent) => boolean, timeoutMs: number, what: string): Promise<AlertEvent> {
    return waitEvent(this.scheduler, 'alert', this.alerts, pred, timeoutMs, what);
  }

  /** Resolves with the first finished delivery (already or still to come) matching pred. */
  waitFinished(pred: (f: FinishedEvent) => boolean, timeoutMs: number, what: string): Promise<FinishedEvent> {
    return waitEvent(this.scheduler, 'finished', this.finished, pred, timeoutMs, what);
  }
}

function waitEvent<T>(em: Scheduler, name: 'alert' | 'finished', seen: readonly T[], pred: (v: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const hit = seen.find(pred);
  if (hit) return Promise.resolve(hit);
  return new Promise((resolve, reject) => {
    const on = (v: unknown): void => {
      if (pred(v as T)) {
        clearTimeout(timer);
        em.off(name, on);
        resolve(v as T);
      }
    };
    const timer = setTimeout(() => {
      em.off(name, on);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; seen ${seen.length} '${name}' events: ${JSON.stringify(seen.slice(-5)).slice(0, 1500)}`));
    }, timeoutMs);
    em.on(name, on);
  });
}

/** The stored next_fire_time of a task, read over a separate read-only connection. */
export function storedNextFire(dbFile: string, taskId: string): number | null {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    const row = db.prepare('SELECT next_fire_time FROM tasks WHERE id = ?').get(taskId) as { next_fire_time: number | null } | undefined;
    if (!row) throw new Error(`task ${taskId} not in ${dbFile}`);
    return row.next_fire_time;
  } finally {
    db.close();
  }
}

/** The fencing epoch currently stored (the token LocalOwnership was given). */
export function storedEpoch(dbFile: string): number {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    return Number((db.prepare("SELECT v FROM meta WHERE k = 'epoch'").get() as { v: string }).v);
  } finally {
    db.close();
  }
}
