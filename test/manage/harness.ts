/**
 * In-process xcron for the management tests, wired the way src/main.ts wires it: a real
 * SqliteTaskStore on a temp file, LocalOwnership on its epoch, the real Delivery (undici, real
 * HTTP), the real Scheduler on the SystemClock, SchedulerStats, and the Hono app driven through
 * `app.request()`. Callbacks go to real node:http receivers (test/helpers/receiver.ts).
 *
 * `restart()` stops everything in main.ts's shutdown order and starts a new instance on the same
 * data file (a new process would do the same: a new epoch, recovery of the outbox, the misfire
 * policy for ticks missed while it was down).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Hono } from 'hono';
import { pino } from 'pino';
import { createApp } from '../../src/api/app.js';
import { TaskService, type Notifier } from '../../src/service/index.js';
import { SystemClock } from '../../src/clock/index.js';
import { LocalOwnership } from '../../src/cluster/index.js';
import { Delivery } from '../../src/delivery/index.js';
import { Scheduler, type AlertEvent, type FinishedEvent } from '../../src/scheduler/index.js';
import { SchedulerStats } from '../../src/scheduler/stats.js';
import { SqliteTaskStore } from '../../src/store/sqlite.js';
import type { RetryPolicy } from '../../src/task/index.js';
import { send, type AppResponse } from '../helpers/app.js';

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

  private constructor(
    readonly dir: string,
    readonly opts: HarnessOptions,
    readonly store: SqliteTaskStore,
    readonly ownership: LocalOwnership,
    readonly delivery: Delivery,
    readonly scheduler: Scheduler,
    readonly app: Hono,
  ) {
    scheduler.on('alert', (a) => this.alerts.push(a));
    scheduler.on('finished', (f) => this.finished.push(f));
  }

  get dbFile(): string {
    return join(this.dir, 'xcron.db');
  }

  static async start(opts: HarnessOptions = {}): Promise<Harness> {
    const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'xcron-manage-'));
    const log = pino({ level: 'silent' });
    const clock = new SystemClock();
    const store = new SqliteTaskStore({ file: join(dir, 'xcron.db'), synchronous: 'normal' });
    const ownership = new LocalOwnership(NODE_ID, 16, store.claimEpoch());
    const delivery = new Delivery({
      clock,
      log,
      userAgent: 'xcron/test',
      globalConcurrency: 256,
      perOriginConcurrency: 64,
      maxResponseBytes: 65_536,
      signingSecrets: [],
    });
    const limits = { requestBodyLimit: 1_048_576, callbackBodyLimit: 65_536, defaultTimezone: 'UTC', pastGraceMs: 1000 };
    const notifier: Notifier = {
      taskChanged: (t) => scheduler.taskChanged(t),
      taskRemoved: (id) => scheduler.taskRemoved(id),
      runQueued: (runId) => void scheduler.deliverRun(runId),
    };
    // One TaskService for the API and the scheduler's follow-ups (child tasks, auto-pause), as in main.
    const service = new TaskService({ store, notifier, clock, slots: 16, limits, nodeId: NODE_ID });
    const scheduler = new Scheduler({
      taskOps: service,
      store,
      ownership,
      delivery,
      clock,
      log,
      nodeId: NODE_ID,
      lookaheadMs: 10_000,
      scanIntervalMs: 500,
      maxSleepMs: 1000,
      misfireThresholdMs: opts.misfireThresholdMs ?? 60_000,
      batchSize: 100,
      maxLoaded: 100_000,
      defaultTimeoutMs: opts.defaultTimeoutMs ?? 10_000,
      defaultRetry: opts.defaultRetry ?? { max_attempts: 1, backoff_ms: 10, max_backoff_ms: 100 },
      alertUrl: opts.alertUrl ?? '',
      maxConsecutiveFailures: opts.maxConsecutiveFailures ?? 0,
    });
    const stats = new SchedulerStats(scheduler);
    const app = createApp({
      store,
      notifier,
      service,
      nodeId: NODE_ID,
      liveStats: () => stats.snapshot(),
      ownership,
      clock,
      log,
      slots: 16,
      limits,
      version: '0.0.0-test',
    });
    await ownership.start();
    await scheduler.start();
    return new Harness(dir, opts, store, ownership, delivery, scheduler, app);
  }

  /** Stops in main.ts's order: timers, drain deliveries, flush history, release slots, close. */
  async stop(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.scheduler.stop();
    await this.delivery.drain(5000);
    await this.scheduler.flush();
    await this.ownership.stop();
    await this.delivery.close();
    await this.store.close();
  }

  /** Stops and removes the data dir. */
  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
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
