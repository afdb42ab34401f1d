/** Shared pieces of the async-completion tests: run views through the API, polling helpers. */
import { createHmac } from 'node:crypto';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { call, type ApiResponse } from '../helpers/http.js';
import { XcronServer, cleanupTempDirs, ensureBuilt, stopAllServers, takeStarted } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';
import { AsyncWorker } from './worker.js';

export const WAIT = 30_000;

export interface AsyncSuite {
  /** This test's worker (a new one per test). */
  readonly worker: AsyncWorker;
  /** Starts the real built server (baseEnv, then env) and points the worker's API calls at it. */
  start(env?: Record<string, string>): Promise<XcronServer>;
}

/**
 * The hooks every standalone async suite shares: build once, a fresh worker per test, servers
 * stopped after each test (their log tails printed when it failed), temp dirs removed at the end.
 */
export function asyncSuite(baseEnv: Record<string, string> = {}): AsyncSuite {
  let current: AsyncWorker | null = null;
  beforeAll(() => {
    ensureBuilt();
  }, 600_000);
  beforeEach(async () => {
    current = await AsyncWorker.start();
  });
  afterEach(async (ctx) => {
    const servers = takeStarted();
    if (ctx.task.result?.state === 'fail') for (const s of servers) console.log(s.tail(60));
    await stopAllServers();
    await current?.close();
    current = null;
  });
  afterAll(() => {
    cleanupTempDirs();
  });
  return {
    get worker(): AsyncWorker {
      if (!current) throw new Error('the async worker exists only inside a test');
      return current;
    },
    async start(env: Record<string, string> = {}): Promise<XcronServer> {
      const srv = await XcronServer.start({ env: { ...baseEnv, ...env } });
      this.worker.apiBase = srv.baseUrl;
      return srv;
    },
  };
}

/** A run as GET /xcron/taskRuns and GET /xcron/runLog show it. */
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
  deadline?: number;
  message?: string;
  output?: unknown;
}

export interface LogLine {
  seq: number;
  time: number;
  line: string;
}

export interface RunLogData {
  run_id: string;
  status: string;
  finished: boolean;
  lines: LogLine[];
  next_since: number;
  run: RunView;
}

/** Every run of a task, newest first (GET /xcron/taskRuns, all pages). */
export async function taskRuns(base: string, taskId: string, headers: Record<string, string> = {}): Promise<RunView[]> {
  const out: RunView[] = [];
  let cursor: string | null = null;
  for (;;) {
    const r: ApiResponse<{ runs: RunView[]; next_cursor: string | null }> = await call<{ runs: RunView[]; next_cursor: string | null }>(base, 'GET', `/xcron/taskRuns?task_id=${encodeURIComponent(taskId)}&limit=1000${cursor ? `&cursor=${cursor}` : ''}`, { headers });
    if (r.status !== 200 || r.body.code !== 0) throw new Error(`taskRuns ${taskId}: HTTP ${r.status} ${r.text}`);
    out.push(...r.body.data.runs);
    cursor = r.body.data.next_cursor;
    if (!cursor) return out;
  }
}

/** One run of a task (undefined while not recorded). */
export async function runOf(base: string, taskId: string, runId: string): Promise<RunView | undefined> {
  return (await taskRuns(base, taskId)).find((r) => r.run_id === runId);
}

/** Polls taskRuns until the run exists and `pred` holds. */
export async function waitRun(base: string, taskId: string, runId: string, pred: (r: RunView) => boolean, what: string, timeoutMs = WAIT): Promise<RunView> {
  const r = await waitUntil(() => runOf(base, taskId, runId), (v) => v !== undefined && pred(v), timeoutMs, `run ${runId}: ${what}`);
  return r!;
}

/** Polls taskRuns until `pred` holds over all runs of the task. */
export function waitRuns(base: string, taskId: string, pred: (rs: RunView[]) => boolean, what: string, timeoutMs = WAIT): Promise<RunView[]> {
  return waitUntil(() => taskRuns(base, taskId), pred, timeoutMs, `task ${taskId}: ${what}`);
}

/** The async run is recorded as awaiting its report: RUNNING with a deadline. */
export const awaiting = (r: RunView): boolean => r.status === 'RUNNING' && typeof r.deadline === 'number';

/** POST /xcron/triggerTask; returns the run id. */
export async function trigger(base: string, taskId: string): Promise<string> {
  const r = await call<{ run_id: string }>(base, 'POST', '/xcron/triggerTask', { json: { task_id: taskId } });
  if (r.status !== 200 || r.body.code !== 0) throw new Error(`triggerTask ${taskId}: HTTP ${r.status} ${r.text}`);
  return r.body.data.run_id;
}

/** createTask that must succeed; returns the task id. */
export async function create(base: string, body: Record<string, unknown>): Promise<string> {
  const r = await call<{ task_id: string }>(base, 'POST', '/xcron/createTask', { json: body });
  if (r.status !== 200 || r.body.code !== 0) throw new Error(`createTask: HTTP ${r.status} ${r.text}`);
  return r.body.data.task_id;
}

/** GET /xcron/runLog. */
export function runLog(base: string, runId: string, query = '', headers: Record<string, string> = {}) {
  return call<RunLogData>(base, 'GET', `/xcron/runLog?run_id=${encodeURIComponent(runId)}${query}`, { headers });
}

/** The value of the xcron_inflight_runs gauge at GET /metrics (runs in flight on that node). */
export async function inflightRuns(base: string): Promise<number> {
  const r = await call(base, 'GET', '/metrics');
  const m = /^xcron_inflight_runs(?:\{[^}]*\})? (\S+)$/m.exec(r.text);
  if (r.status !== 200 || !m) throw new Error(`GET /metrics: HTTP ${r.status}, no xcron_inflight_runs: ${r.text.slice(0, 300)}`);
  return Number(m[1]);
}

/** The report token a server with this report secret hands out for a run (src/task/token.ts). */
export const tokenFor = (secret: string, runId: string): string => createHmac('sha256', secret).update(`report:${runId}`).digest('hex');

/** Rows of a run's log in the server's SQLite file (a read-only connection; WAL allows it). */
export function logRowsInDb(dbFile: string, runId: string): number {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    return (db.prepare('SELECT COUNT(*) AS n FROM run_logs WHERE run_id = ?').get(runId) as { n: number }).n;
  } finally {
    db.close();
  }
}
