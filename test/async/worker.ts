/**
 * A real asynchronous worker for the async-completion tests: a node:http server on a free port
 * that receives xcron callbacks, records them with their X-Xcron-* headers, answers (202 by
 * default), and then — like a real long-running job — appends log lines and reports the outcome
 * back to the xcron API with undici (POST /xcron/appendRunLog, POST /xcron/reportRun).
 *
 * What the worker does with each callback is a `Plan` chosen per request by the test. Every API
 * answer the worker gets is recorded, and tests wait on arrivals and answers through events
 * (`waitForCallback`, `waitForResult`), never on sleeps.
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { call, type ApiResponse } from '../helpers/http.js';

export type Outcome = 'SUCCESS' | 'FAIL';

/** One callback as the worker saw it. */
export interface Job {
  /** 1-based arrival order over the whole worker. */
  seq: number;
  path: string;
  taskId: string;
  fireId: string;
  runId: string;
  token: string;
  attempt: number;
  scheduled: number;
  body: string;
  headers: IncomingHttpHeaders;
}

/** What the worker does with one callback. */
export interface Plan {
  /** HTTP status of the answer. Default 202. */
  status?: number;
  /** Lines appended (one appendRunLog call per inner array) after answering. */
  logs?: string[][];
  /** The outcome reported after the logs; null/undefined: no report (the test reports, or nobody). */
  report?: { status: Outcome; message?: string; output?: unknown } | null;
  /** Report (and append) before answering the callback instead of after. */
  reportBeforeAnswer?: boolean;
  /** Start the job (logs and report) only once this settles. */
  after?: Promise<unknown>;
}

/** An API call the worker made, with the answer it got. */
export interface WorkerResult {
  kind: 'log' | 'report';
  runId: string;
  attempt: number;
  status: number;
  code: number;
  message: string;
  data: unknown;
}

export type Planner = (job: Job, nthOnPath: number) => Plan;

const h = (headers: IncomingHttpHeaders, name: string): string => {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : (v ?? '');
};

export class AsyncWorker {
  readonly jobs: Job[] = [];
  readonly results: WorkerResult[] = [];
  /** Where the worker calls back (the node it reports through). */
  apiBase = '';
  private readonly events = new EventEmitter();
  private readonly planners = new Map<string, Planner>();
  private readonly perPath = new Map<string, number>();
  private readonly pending = new Set<ServerResponse>();
  private readonly jobsRunning = new Set<Promise<void>>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {
    this.events.setMaxListeners(1000);
  }

  static async start(apiBase = ''): Promise<AsyncWorker> {
    const server = createServer();
    server.keepAliveTimeout = 120_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const w = new AsyncWorker(server, (server.address() as AddressInfo).port);
    w.apiBase = apiBase;
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => w.onCallback(req.url ?? '/', req.headers, Buffer.concat(chunks).toString('utf8'), res));
    });
    return w;
  }

  /** Absolute URL of a path on this worker. */
  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** How callbacks to `path` are handled (default: answer 202 and do nothing else). */
  on(path: string, planner: Planner | Plan): void {
    this.planners.set(path, typeof planner === 'function' ? planner : () => planner);
  }

  forTask(taskId: string): Job[] {
    return this.jobs.filter((j) => j.taskId === taskId);
  }

  /** Resolves with the first job (already received or still to come) matching `pred`. */
  waitForCallback(pred: (j: Job) => boolean, timeoutMs: number, what: string): Promise<Job> {
    return this.waitOn('job', () => this.jobs.find(pred), timeoutMs, what);
  }

  /** Resolves with the first API answer the worker got (or gets) matching `pred`. */
  waitForResult(pred: (r: WorkerResult) => boolean, timeoutMs: number, what: string): Promise<WorkerResult> {
    return this.waitOn('result', () => this.results.find(pred), timeoutMs, what);
  }

  /** POST /xcron/reportRun through `base` (default: apiBase). */
  report(job: Pick<Job, 'runId' | 'token'>, status: string, extra: { message?: unknown; output?: unknown } = {}, base = this.apiBase): Promise<ApiResponse<{ run_id: string; status: string }>> {
    return call(base, 'POST', '/xcron/reportRun', { json: { run_id: job.runId, token: job.token, status, ...extra } });
  }

  /** POST /xcron/appendRunLog through `base` (default: apiBase). */
  appendLog(job: Pick<Job, 'runId' | 'token'>, lines: unknown, base = this.apiBase): Promise<ApiResponse<{ run_id: string; accepted: number; dropped: number }>> {
    return call(base, 'POST', '/xcron/appendRunLog', { json: { run_id: job.runId, token: job.token, lines } });
  }

  /** Waits for the jobs still running, answers held callbacks, and closes the server. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.jobsRunning]);
    this.events.removeAllListeners();
    for (const res of this.pending) res.destroy();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private onCallback(url: string, headers: IncomingHttpHeaders, body: string, res: ServerResponse): void {
    const path = url.split('?')[0] ?? url;
    const job: Job = {
      seq: this.jobs.length + 1,
      path,
      taskId: h(headers, 'x-xcron-task-id'),
      fireId: h(headers, 'x-xcron-fire-id'),
      runId: h(headers, 'x-xcron-run-id'),
      token: h(headers, 'x-xcron-report-token'),
      attempt: Number(h(headers, 'x-xcron-attempt')),
      scheduled: Number(h(headers, 'x-xcron-scheduled-time')),
      body,
      headers,
    };
    this.jobs.push(job);
    const nth = (this.perPath.get(path) ?? 0) + 1;
    this.perPath.set(path, nth);
    const planner: Planner = this.planners.get(path) ?? (() => ({}));
    const plan = planner(job, nth);
    this.events.emit('job');
    const answer = (): void => {
      if (res.destroyed || res.writableEnded) return;
      res.writeHead(plan.status ?? 202, { 'content-type': 'application/json' }).end('{"accepted":true}');
    };
    const work = async (): Promise<void> => {
      if (plan.after) await plan.after;
      for (const lines of plan.logs ?? []) await this.record('log', job, () => this.appendLog(job, lines));
      if (plan.report) {
        const { status, ...extra } = plan.report;
        await this.record('report', job, () => this.report(job, status, extra));
      }
    };
    if (plan.reportBeforeAnswer) {
      this.pending.add(res);
      this.track(work().finally(() => {
        this.pending.delete(res);
        answer();
      }));
      return;
    }
    answer();
    if (plan.logs || plan.report) this.track(work());
  }

  private track(p: Promise<void>): void {
    const q = p.catch((e: unknown) => {
      this.results.push({ kind: 'report', runId: '', attempt: 0, status: 0, code: -1, message: `worker error: ${String(e)}`, data: null });
      this.events.emit('result');
    });
    this.jobsRunning.add(q);
    void q.finally(() => this.jobsRunning.delete(q));
  }

  private async record(kind: WorkerResult['kind'], job: Job, fn: () => Promise<ApiResponse<unknown>>): Promise<void> {
    const r = await fn();
    this.results.push({ kind, runId: job.runId, attempt: job.attempt, status: r.status, code: r.body.code, message: r.body.message, data: r.body.data });
    this.events.emit('result');
  }

  private waitOn<T>(event: string, find: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const hit = find();
        if (hit === undefined) return false;
        clearTimeout(timer);
        this.events.off(event, check);
        resolve(hit);
        return true;
      };
      const timer = setTimeout(() => {
        this.events.off(event, check);
        const seen = this.jobs.slice(-8).map((j) => `${j.path} run=${j.runId} attempt=${j.attempt}`);
        const got = this.results.slice(-8).map((r) => `${r.kind} ${r.runId} -> ${r.status}/${r.code}`);
        reject(new Error(`worker: timed out after ${timeoutMs} ms waiting for ${what}; callbacks: ${JSON.stringify(seen)}; api answers: ${JSON.stringify(got)}`));
      }, timeoutMs);
      if (check()) return;
      this.events.on(event, check);
    });
  }
}
