/**
 * ThreadedSqliteStore: the SQLite `TaskStore`, run in a worker thread (src/store/sqlite-worker.ts).
 * Every call is forwarded in order and answered in order, so the store keeps its one-writer,
 * serial semantics; only the thread that waits for SQLite changes. The main thread keeps the
 * scheduler's timers, the API and the metrics, and no commit or WAL checkpoint ever stalls them.
 *
 * Errors cross the boundary as data (toWire/fromWire in src/errors.ts) and are rebuilt as their
 * class: a StoreUnavailableError stays one (the API answers 503, code 1016), an XcronError keeps
 * its code and status, and any other error keeps its name and code. If the thread
 * dies, its calls in progress fail as unavailable and a new thread opens the same file (the
 * fencing epoch lives in the file, so it is not claimed again).
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { StoreUnavailableError, fromWire, type WireError } from '../errors.js';
import { workerExecArgv } from '../worker-args.js';
import type { CheckResult } from './sqlite-check.js';
import { checkLogLine, type SqliteOpenOptions } from './sqlite-open.js';
import { StoreStartupError } from './startup-errors.js';
import type { Task } from '../task/index.js';
import { taskRow, type TaskInsertRow } from './sqlite-rows.js';
import type { CreateResult, ExecutorStore, TaskStore } from './types.js';

/** The TaskStore methods forwarded to the thread (all of them). */
export const STORE_METHODS = [
  'create',
  'get',
  'delete',
  'dueTasks',
  'dueKeys',
  'commitFires',
  'uncommitFire',
  'updateRuns',
  'unfinishedRuns',
  'getRun',
  'listRuns',
  'pageRuns',
  'updateTask',
  'commitTrigger',
  'commitRetry',
  'queryRuns',
  'reportDays',
  'listTasks',
  'stats',
  'pruneRuns',
  'purgeCompleted',
  'reportRun',
  'appendRunLog',
  'readRunLog',
  'sharedSecret',
  'ping',
  'close',
] as const satisfies readonly (keyof TaskStore)[];

/** The executor registry's calls, store methods of SqliteTaskStore forwarded like the others. */
export const EXECUTOR_METHODS = ['executorRegister', 'executorUnregister', 'executorLive', 'executorList'] as const;

export interface StoreWorkerData {
  options: SqliteOpenOptions;
  claimEpoch: boolean;
}
export interface StoreCall {
  id: number;
  m: string;
  a: unknown[];
}
/** Per row of a createRows call: 1 created, the task holding its idempotency key, or the error. */
export type CreatedReply = 1 | { t: Task } | { e: WireError };
export type StoreReply =
  | { t: 'ready'; epoch: number | null; check: CheckResult | null }
  | { t: 'failed'; error: WireError }
  | { t: 'r'; id: number; value?: unknown; error?: WireError };

/** The class behind each wire error (src/errors.ts); a StoreStartupError keeps the stack of its cause. */
function toError(w: WireError): Error {
  if (w.name === 'StoreStartupError') {
    const e = new StoreStartupError(w.message);
    if (w.cause !== undefined) e.cause = Object.assign(new Error('(in the store thread)'), { stack: w.cause });
    return e;
  }
  return fromWire(w);
}

type Forwarded = Omit<Pick<TaskStore, (typeof STORE_METHODS)[number]>, 'create'>;

export class ThreadedSqliteStore {
  private worker!: Worker;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private closing = false;
  private closed: Promise<void> | null = null;
  private restarts = 0;
  /** Why the store thread could not be restarted; every call fails from then on. */
  private broken: string | null = null;
  /** The fencing epoch this process claimed when the store opened. */
  epoch = 0;

  /** The executor registry, in the store thread. */
  readonly executors: ExecutorStore = {
    register: (r) => this.call('executorRegister', [r]) as ReturnType<ExecutorStore['register']>,
    unregister: (g, a) => this.call('executorUnregister', [g, a]) as Promise<boolean>,
    live: (g, now) => this.call('executorLive', [g, now]) as ReturnType<ExecutorStore['live']>,
    list: (now) => this.call('executorList', [now]) as ReturnType<ExecutorStore['list']>,
  };

  private constructor(
    private readonly options: SqliteOpenOptions,
    private readonly log: Logger,
    private readonly workerUrl: URL,
  ) {}

  /** Opens the file in a new thread and claims this process's fencing epoch. */
  static async open(options: SqliteOpenOptions, log: Logger, workerUrl = new URL('./sqlite-worker.js', import.meta.url)): Promise<ThreadedSqliteStore & TaskStore> {
    const s = new ThreadedSqliteStore(options, log, workerUrl);
    s.epoch = (await s.start(true)) ?? 0;
    return s as ThreadedSqliteStore & TaskStore;
  }

  private start(claimEpoch: boolean): Promise<number | null> {
    const execArgv = workerExecArgv('store-worker');
    const w = new Worker(this.workerUrl, { workerData: { options: this.options, claimEpoch } satisfies StoreWorkerData, name: 'xcron-store', execArgv });
    this.worker = w;
    return new Promise<number | null>((resolve, reject) => {
      let ready = false;
      w.on('message', (m: StoreReply) => {
        if (m.t === 'r') {
          const p = this.pending.get(m.id);
          if (!p) return;
          this.pending.delete(m.id);
          if (m.error) p.reject(toError(m.error));
          else p.resolve(m.value);
        } else if (m.t === 'ready') {
          ready = true;
          if (m.check) this.log.info(...checkLogLine(m.check));
          resolve(m.epoch);
        } else {
          reject(toError(m.error));
        }
      });
      w.on('error', (err) => {
        this.log.error({ err }, 'store worker thread failed');
        if (!ready) reject(err);
      });
      w.on('exit', (code) => {
        if (this.worker !== w) return;
        const unavailable = new StoreUnavailableError(this.closing ? 'store is closed' : `store thread exited (code ${code})`);
        for (const p of this.pending.values()) p.reject(unavailable);
        this.pending.clear();
        if (!ready) reject(unavailable);
        if (this.closing || !ready) return;
        this.restarts++;
        this.log.error({ code, restarts: this.restarts }, 'store worker thread exited; opening the store again in a new thread');
        this.start(false)
          .then(() => this.onRestart?.())
          .catch((err: unknown) => {
            // No thread any more: every later call fails at once instead of waiting for an answer.
            this.broken = err instanceof Error ? err.message : String(err);
            this.log.error({ err }, 'store worker thread could not be restarted');
          });
      });
    });
  }

  /**
   * Called after a dead thread was replaced. A commit in progress when the thread died may have
   * reached the file without its answer reaching the scheduler: the owner should read its outbox
   * again (Scheduler.redeliverOutbox), which redelivers such runs with their fire id.
   */
  onRestart: (() => void) | null = null;

  /** Times the thread was restarted after dying. */
  restartCount(): number {
    return this.restarts;
  }

  private call(m: string, a: unknown[]): Promise<unknown> {
    if (this.closing && m !== 'close') return Promise.reject(new StoreUnavailableError('store is closed'));
    if (this.broken !== null) return Promise.reject(new StoreUnavailableError(`the store thread could not be restarted: ${this.broken}`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, m, a } satisfies StoreCall);
    });
  }

  /**
   * Creates wait here for the end of the event-loop turn, then cross to the thread together as flat
   * rows (one message, one transaction there; taskRow() is the one serialisation of each task).
   * Each caller's promise settles after that commit; the reply carries only what differs per task.
   */
  private createQueue: { task: Task; done: (r: CreateResult | Error) => void }[] = [];

  create(task: Task): Promise<CreateResult> {
    return new Promise((resolve, reject) => this.enqueue(task, (r) => (r instanceof Error ? reject(r) : resolve(r))));
  }

  createMany(tasks: readonly Task[]): Promise<(CreateResult | Error)[]> {
    return Promise.all(tasks.map((t) => new Promise<CreateResult | Error>((resolve) => this.enqueue(t, resolve))));
  }

  private enqueue(task: Task, done: (r: CreateResult | Error) => void): void {
    this.createQueue.push({ task, done });
    if (this.createQueue.length === 1) setImmediate(() => this.flushCreates());
  }

  private flushCreates(): void {
    const batch: typeof this.createQueue = [];
    const rows: TaskInsertRow[] = [];
    for (const b of this.createQueue) {
      try {
        rows.push(taskRow(b.task));
        batch.push(b);
      } catch (e) {
        b.done(e instanceof Error ? e : new Error(String(e))); // cannot be serialised: fails alone
      }
    }
    this.createQueue = [];
    if (rows.length === 0) return;
    this.call('createRows', [rows]).then(
      (value) => {
        const res = value as CreatedReply[];
        batch.forEach((b, i) => {
          const r = res[i];
          if (r === 1) b.done({ task: b.task, created: true });
          else if (r !== undefined && 'e' in r) b.done(toError(r.e));
          else if (r !== undefined) b.done({ task: r.t, created: false });
          else b.done(new Error('the store thread answered fewer rows than it was sent'));
        });
      },
      (e: unknown) => {
        for (const b of batch) b.done(e instanceof Error ? e : new Error(String(e)));
      },
    );
  }

  static {
    for (const m of STORE_METHODS) {
      if (m === 'close' || m === 'create') continue;
      Object.defineProperty(ThreadedSqliteStore.prototype, m, {
        value: function (this: ThreadedSqliteStore, ...a: unknown[]) {
          return this.call(m, a);
        },
        writable: true,
        configurable: true,
      });
    }
  }

  /** Closes the database and ends the thread. Safe to call twice: returns the same promise. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      if (this.broken !== null) {
        this.closing = true;
        return;
      }
      const done = this.call('close', []).catch(() => undefined);
      this.closing = true;
      const exited = new Promise<void>((r) => this.worker.once('exit', () => r()));
      await done;
      const force = setTimeout(() => void this.worker.terminate(), 5000);
      await exited;
      clearTimeout(force);
    })();
    return this.closed;
  }
}

// The forwarded methods are installed on the prototype above; this tells TypeScript they exist.
export interface ThreadedSqliteStore extends Forwarded {}
