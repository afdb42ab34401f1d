/**
 * The xcron HTTP API client: one method per endpoint, typed requests and answers, typed errors,
 * retries on 503 with backoff (honouring Retry-After), and async iterators over paged listings.
 * Uses the global `fetch` of Node 20 (control-plane traffic only; callbacks go the other way).
 */
import { XcronApiError, XcronTransportError, apiErrorOf } from './errors.js';
import type {
  AppendRunLogRequest,
  AppendRunLogResult,
  ClusterInfo,
  CreateTaskRequest,
  CreateTaskResult,
  CreateTasksResult,
  Envelope,
  Health,
  ListTasksQuery,
  PauseTaskResult,
  Readiness,
  ReportRunRequest,
  ReportRunResult,
  ResumeTaskResult,
  RunLogLine,
  RunLogPage,
  RunLogQuery,
  RunPage,
  RunView,
  Stats,
  TaskDetail,
  TaskPage,
  TaskRunsQuery,
  TaskView,
  TriggerOptions,
  TriggerTaskResult,
  UpdateTaskRequest,
  UpdateTaskResult,
} from './types.js';
import type { ExecutorList, RegisterExecutorRequest, RegisteredExecutor, UnregisteredExecutor } from './executor-types.js';
import type { BulkOptions, BulkResult, BulkSelector, PauseOptions, DailyReport, RetryRunResult, RetryRunsRequest, RetryRunsResult, RunAcrossTasks, RunsPage, RunsQuery } from './ops-types.js';
import { isEnvelope, parseRetryAfter, sleep, type ApiResult, type CallOptions, type ClientOptions, type HttpMethod, type RequestSpec, type RetryOptions } from './options.js';

export class XcronClient {
  readonly baseUrl: string;
  private readonly o: ClientOptions;
  private readonly fetchFn: typeof fetch;
  private readonly retry: Required<Omit<RetryOptions, 'onRetry'>> & Pick<RetryOptions, 'onRetry'>;

  constructor(options: ClientOptions) {
    if (!/^https?:\/\//i.test(options.baseUrl)) throw new TypeError(`baseUrl must be an absolute http(s) URL, got ${JSON.stringify(options.baseUrl)}`);
    this.o = options;
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.fetchFn = options.fetch ?? globalThis.fetch;
    const { retries = 3, baseDelayMs = 200, maxDelayMs = 5000, maxRetryAfterMs = 60_000, statuses = [503], networkErrorsOnGet = true, onRetry } = options.retry ?? {};
    this.retry = { retries, baseDelayMs, maxDelayMs, maxRetryAfterMs, statuses, networkErrorsOnGet, onRetry };
  }

  // ---- tasks -------------------------------------------------------------------------------

  /** POST /xcron/createTask. Give `idempotency_key` to make a retried create safe. */
  async createTask(req: CreateTaskRequest, opts?: CallOptions): Promise<CreateTaskResult> {
    return (await this.call<CreateTaskResult>('POST', '/xcron/createTask', { body: req }, opts)).data;
  }

  /**
   * POST /xcron/createTasks: up to 1,000 tasks in one request, each stored on its own. Per task, in
   * order, its id or its error's code and message (a bad task does not fail the call).
   */
  async createTasks(tasks: CreateTaskRequest[], opts?: CallOptions): Promise<CreateTasksResult> {
    return (await this.call<CreateTasksResult>('POST', '/xcron/createTasks', { body: { tasks } }, opts)).data;
  }

  /** POST /xcron/deleteTask. Unknown id: XcronNotFoundError (1007). */
  async deleteTask(taskId: string, opts?: CallOptions): Promise<void> {
    await this.call<null>('POST', '/xcron/deleteTask', { body: { task_id: taskId } }, opts);
  }

  /** GET /xcron/queryTask: the task with its run figures. Unknown id: XcronNotFoundError (1007). */
  async queryTask(taskId: string, opts?: CallOptions): Promise<TaskDetail> {
    return (await this.call<TaskDetail>('GET', '/xcron/queryTask', { query: { task_id: taskId } }, opts)).data;
  }

  /** POST /xcron/updateTask: changes only the fields given; the next fire is recomputed when the schedule changes. */
  async updateTask(req: UpdateTaskRequest, opts?: CallOptions): Promise<UpdateTaskResult> {
    return (await this.call<UpdateTaskResult>('POST', '/xcron/updateTask', { body: req }, opts)).data;
  }

  /**
   * POST /xcron/pauseTask (idempotent). `o.note` (at most 500 characters) is kept on the task with
   * who paused it and when (TaskView.pause) until it is resumed.
   */
  async pauseTask(taskId: string, o: PauseOptions = {}, opts?: CallOptions): Promise<PauseTaskResult> {
    return (await this.call<PauseTaskResult>('POST', '/xcron/pauseTask', { body: { task_id: taskId, ...o } }, opts)).data;
  }

  /** POST /xcron/resumeTask: periodic tasks continue from now; a one-shot keeps its time. */
  async resumeTask(taskId: string, opts?: CallOptions): Promise<ResumeTaskResult> {
    return (await this.call<ResumeTaskResult>('POST', '/xcron/resumeTask', { body: { task_id: taskId } }, opts)).data;
  }

  /**
   * POST /xcron/triggerTask: one run now, outside the schedule (also when paused). `run.body` and
   * `run.headers` apply to this run only.
   */
  async triggerTask(taskId: string, run: TriggerOptions = {}, opts?: CallOptions): Promise<TriggerTaskResult> {
    return (await this.call<TriggerTaskResult>('POST', '/xcron/triggerTask', { body: { task_id: taskId, ...run } }, opts)).data;
  }

  /** GET /xcron/listTasks: one page, ordered by task id. */
  async listTasks(query: ListTasksQuery = {}, opts?: CallOptions): Promise<TaskPage> {
    const { state, name, tag, last_status, limit, cursor } = query;
    return (await this.call<TaskPage>('GET', '/xcron/listTasks', { query: { state, name, tag, last_status, limit, cursor } }, opts)).data;
  }

  /** POST /xcron/pauseTasks: pauses every task with the tag or name prefix (all of them, in pages), with an optional note. */
  async pauseTasks(select: BulkSelector, o: BulkOptions & PauseOptions = {}, opts?: CallOptions): Promise<BulkResult> {
    return (await this.call<BulkResult>('POST', '/xcron/pauseTasks', { body: { ...select, ...o } }, opts)).data;
  }

  /** POST /xcron/resumeTasks: resumes every task with the tag or name prefix. */
  async resumeTasks(select: BulkSelector, o: BulkOptions = {}, opts?: CallOptions): Promise<BulkResult> {
    return (await this.call<BulkResult>('POST', '/xcron/resumeTasks', { body: { ...select, ...o } }, opts)).data;
  }

  /** POST /xcron/deleteTasks: deletes every task with the tag or name prefix. */
  async deleteTasks(select: BulkSelector, o: BulkOptions = {}, opts?: CallOptions): Promise<BulkResult> {
    return (await this.call<BulkResult>('POST', '/xcron/deleteTasks', { body: { ...select, ...o } }, opts)).data;
  }

  /** Every task matching `query`, page after page (`limit` is the page size). */
  async *iterateTasks(query: Omit<ListTasksQuery, 'cursor'> = {}, opts?: CallOptions): AsyncGenerator<TaskView, void, undefined> {
    for await (const page of this.taskPages(query, opts)) yield* page.tasks;
  }

  /** The pages of listTasks, following `next_cursor` until it is null. */
  async *taskPages(query: ListTasksQuery = {}, opts?: CallOptions): AsyncGenerator<TaskPage, void, undefined> {
    let cursor = query.cursor ?? null;
    for (;;) {
      const page = await this.listTasks({ ...query, cursor }, opts);
      yield page;
      if (page.next_cursor === null) return;
      cursor = page.next_cursor;
    }
  }

  /** GET /xcron/taskRuns: one page of a task's run records, newest first. */
  async taskRuns(taskId: string, query: TaskRunsQuery = {}, opts?: CallOptions): Promise<RunPage> {
    return (await this.call<RunPage>('GET', '/xcron/taskRuns', { query: { task_id: taskId, limit: query.limit, cursor: query.cursor } }, opts)).data;
  }

  /** Every retained run of a task, newest first, page after page. */
  async *iterateTaskRuns(taskId: string, query: Omit<TaskRunsQuery, 'cursor'> = {}, opts?: CallOptions): AsyncGenerator<RunView, void, undefined> {
    for await (const page of this.runPages(taskId, query, opts)) yield* page.runs;
  }

  /** The pages of taskRuns, following `next_cursor` until it is null. */
  async *runPages(taskId: string, query: TaskRunsQuery = {}, opts?: CallOptions): AsyncGenerator<RunPage, void, undefined> {
    let cursor = query.cursor ?? null;
    for (;;) {
      const page = await this.taskRuns(taskId, { ...query, cursor }, opts);
      yield page;
      if (page.next_cursor === null) return;
      cursor = page.next_cursor;
    }
  }

  // ---- runs across tasks, replay, report ------------------------------------------------------

  /** GET /xcron/runs: one page of runs of every task, newest first. `{status: 'FAIL', replayed: false}` is the dead-letter list. */
  async listRuns(query: RunsQuery = {}, opts?: CallOptions): Promise<RunsPage> {
    const { status, from, to, name_prefix, task_id, replayed, limit, cursor } = query;
    return (await this.call<RunsPage>('GET', '/xcron/runs', { query: { status, from, to, name_prefix, task_id, replayed, limit, cursor } }, opts)).data;
  }

  /** Every run matching `query`, newest first, page after page (`limit` is the page size). */
  async *iterateRuns(query: Omit<RunsQuery, 'cursor'> = {}, opts?: CallOptions): AsyncGenerator<RunAcrossTasks, void, undefined> {
    for await (const page of this.listRunsPages(query, opts)) yield* page.runs;
  }

  /** The pages of listRuns, following `next_cursor` until it is null. */
  async *listRunsPages(query: RunsQuery = {}, opts?: CallOptions): AsyncGenerator<RunsPage, void, undefined> {
    let cursor = query.cursor ?? null;
    for (;;) {
      const page = await this.listRuns({ ...query, cursor }, opts);
      yield page;
      if (page.next_cursor === null) return;
      cursor = page.next_cursor;
    }
  }

  /** POST /xcron/retryRun: delivers a finished FAIL run again as `<run_id>:r<N>`. */
  async retryRun(runId: string, opts?: CallOptions): Promise<RetryRunResult> {
    return (await this.call<RetryRunResult>('POST', '/xcron/retryRun', { body: { run_id: runId } }, opts)).data;
  }

  /** POST /xcron/retryRuns: delivers the newest matching FAIL runs not retried yet again (`dry_run` lists them). */
  async retryRuns(req: RetryRunsRequest = {}, opts?: CallOptions): Promise<RetryRunsResult> {
    return (await this.call<RetryRunsResult>('POST', '/xcron/retryRuns', { body: req }, opts)).data;
  }

  /** GET /xcron/report: per UTC day, runs by final status and lateness, for `days` days (1..366, default 30). */
  async report(days?: number, opts?: CallOptions): Promise<DailyReport> {
    return (await this.call<DailyReport>('GET', '/xcron/report', { query: { days } }, opts)).data;
  }

  // ---- executors ---------------------------------------------------------------------------

  /** POST /xcron/registerExecutor: registers an instance; calling it again is the heartbeat (token role `executor` or `admin`). */
  async registerExecutor(req: RegisterExecutorRequest, opts?: CallOptions): Promise<RegisteredExecutor> {
    return (await this.call<RegisteredExecutor>('POST', '/xcron/registerExecutor', { body: req }, opts)).data;
  }

  /** POST /xcron/unregisterExecutor: removes an instance at once (XcronNotFoundError, code 1027, when it is not registered). */
  async unregisterExecutor(group: string, address: string, opts?: CallOptions): Promise<UnregisteredExecutor> {
    return (await this.call<UnregisteredExecutor>('POST', '/xcron/unregisterExecutor', { body: { group, address } }, opts)).data;
  }

  /** GET /xcron/executors: every group (or just `group`) with its instances, last heartbeats and live flags. */
  async listExecutors(group?: string, opts?: CallOptions): Promise<ExecutorList> {
    return (await this.call<ExecutorList>('GET', '/xcron/executors', { query: { group } }, opts)).data;
  }

  // ---- service -----------------------------------------------------------------------------

  /** GET /xcron/stats. */
  async stats(opts?: CallOptions): Promise<Stats> {
    return (await this.call<Stats>('GET', '/xcron/stats', {}, opts)).data;
  }

  /** GET /xcron/cluster: this node, live members, slot ownership. */
  async cluster(opts?: CallOptions): Promise<ClusterInfo> {
    return (await this.call<ClusterInfo>('GET', '/xcron/cluster', {}, opts)).data;
  }

  /** GET /healthz: liveness. */
  async healthz(opts?: CallOptions): Promise<Health> {
    return (await this.call<Health>('GET', '/healthz', {}, opts)).data;
  }

  /**
   * GET /readyz: readiness. A node that is not ready answers 503, thrown as XcronUnavailableError
   * (not retried unless `opts.retries` says so).
   */
  async readyz(opts?: CallOptions): Promise<Readiness> {
    return (await this.call<Readiness>('GET', '/readyz', {}, { retries: 0, ...opts })).data;
  }

  /** GET /metrics: the Prometheus text. */
  async metrics(opts?: CallOptions): Promise<string> {
    const res = await this.send('GET', '/metrics', {}, opts ?? {});
    if (res.response.status === 200) return res.text;
    throw this.failure('GET', '/metrics', res.response, res.text, res.attempts);
  }

  // ---- async jobs (the worker side; authenticated by the run's report token) ------------------

  /** POST /xcron/reportRun: closes an async run. Repeating the same outcome is safe (code 0). */
  async reportRun(req: ReportRunRequest, opts?: CallOptions): Promise<ReportRunResult> {
    return (await this.call<ReportRunResult>('POST', '/xcron/reportRun', { body: req }, opts)).data;
  }

  /** POST /xcron/appendRunLog: appends lines to a run's execution log. */
  async appendRunLog(req: AppendRunLogRequest, opts?: CallOptions): Promise<AppendRunLogResult> {
    return (await this.call<AppendRunLogResult>('POST', '/xcron/appendRunLog', { body: req }, opts)).data;
  }

  /** GET /xcron/runLog: lines after `since`, with the run's status. */
  async runLog(runId: string, query: RunLogQuery = {}, opts?: CallOptions): Promise<RunLogPage> {
    return (await this.call<RunLogPage>('GET', '/xcron/runLog', { query: { run_id: runId, since: query.since, limit: query.limit } }, opts)).data;
  }

  /**
   * Tails a run's log: yields every line from `since` on, polling every `intervalMs` (default 1000)
   * while the run is unfinished, and ends once the run is finished and every line is read.
   */
  async *followRunLog(runId: string, o: { since?: number; intervalMs?: number; limit?: number } = {}, opts: CallOptions = {}): AsyncGenerator<RunLogLine, void, undefined> {
    let since = o.since ?? 0;
    for (;;) {
      const page = await this.runLog(runId, { since, ...(o.limit !== undefined ? { limit: o.limit } : {}) }, opts);
      yield* page.lines;
      since = page.next_since;
      if (page.lines.length > 0) continue; // more may be waiting
      if (page.finished) return;
      await sleep(o.intervalMs ?? 1000, opts.signal);
    }
  }

  // ---- the transport -------------------------------------------------------------------------

  /**
   * Calls any endpoint that answers the envelope and returns its data (with the request id). The
   * typed methods above are built on it; it also reaches endpoints newer than this client.
   */
  async call<T>(method: HttpMethod, path: string, spec: RequestSpec = {}, opts: CallOptions = {}): Promise<ApiResult<T>> {
    const { response, text, attempts } = await this.send(method, path, spec, opts);
    const env = this.parseEnvelope(method, path, response, text, attempts);
    if (env.code !== 0 || !response.ok) throw this.apiError(method, path, response, env, attempts);
    return { data: env.data as T, message: env.message, requestId: env.uuid, httpStatus: response.status };
  }

  private async send(method: HttpMethod, path: string, spec: RequestSpec, opts: CallOptions): Promise<{ response: Response; text: string; attempts: number }> {
    const url = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(spec.query ?? {})) if (v !== undefined && v !== null) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: 'application/json', ...this.o.headers };
    if (this.o.token) headers.authorization = `Bearer ${this.o.token}`;
    if (opts.requestId) headers['x-request-id'] = opts.requestId;
    let body: string | undefined;
    if (spec.body !== undefined) {
      body = JSON.stringify(spec.body);
      headers['content-type'] = 'application/json';
    }
    const retries = opts.retries ?? this.retry.retries;
    const timeoutMs = opts.timeoutMs ?? this.o.timeoutMs ?? 30_000;
    for (let attempt = 1; ; attempt++) {
      const signal = opts.signal ? AbortSignal.any([opts.signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs);
      let response: Response;
      let text: string;
      try {
        response = await this.fetchFn(url, { method, headers, ...(body !== undefined ? { body } : {}), signal, redirect: 'manual' });
        text = await response.text();
      } catch (e) {
        if (opts.signal?.aborted) throw new XcronTransportError(`${method} ${path}: aborted`, method, path, null, attempt, { cause: e });
        const timedOut = (e as Error).name === 'TimeoutError';
        const err = new XcronTransportError(
          `${method} ${path}: ${timedOut ? `no answer within ${timeoutMs} ms` : `request failed: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}`}`,
          method,
          path,
          null,
          attempt,
          { cause: e },
        );
        if (attempt > retries || method !== 'GET' || !this.retry.networkErrorsOnGet) throw err;
        await this.backoff(method, path, attempt, null, err, opts.signal);
        continue;
      }
      if (attempt <= retries && this.retry.statuses.includes(response.status)) {
        const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
        if (retryAfterMs === null || retryAfterMs <= this.retry.maxRetryAfterMs) {
          const err = this.failure(method, path, response, text, attempt);
          await this.backoff(method, path, attempt, retryAfterMs, err, opts.signal);
          continue;
        }
      }
      return { response, text, attempts: attempt };
    }
  }

  private async backoff(method: string, path: string, attempt: number, retryAfterMs: number | null, error: XcronApiError | XcronTransportError, signal: AbortSignal | undefined): Promise<void> {
    const cap = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1));
    const jittered = Math.floor((this.o.random ?? Math.random)() * cap);
    const delayMs = Math.max(jittered, retryAfterMs ?? 0);
    this.retry.onRetry?.({ method, path, attempt, delayMs, retryAfterMs, error });
    await sleep(delayMs, signal);
  }

  private parseEnvelope(method: string, path: string, response: Response, text: string, attempts: number): Envelope<unknown> {
    let v: unknown;
    try {
      v = JSON.parse(text) as unknown;
    } catch {
      v = undefined;
    }
    if (!isEnvelope(v)) {
      throw new XcronTransportError(`${method} ${path}: HTTP ${response.status} without the xcron envelope: ${JSON.stringify(text.slice(0, 200))}`, method, path, response.status, attempts);
    }
    return v;
  }

  private apiError(method: string, path: string, response: Response, env: Envelope<unknown>, attempts: number): XcronApiError {
    return apiErrorOf({
      code: env.code,
      httpStatus: response.status,
      message: env.message,
      requestId: env.uuid || response.headers.get('x-request-id'),
      method,
      path,
      attempts,
      retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
    });
  }

  /** The error of a failed answer: typed when it is the envelope, a transport error otherwise. */
  private failure(method: string, path: string, response: Response, text: string, attempts: number): XcronApiError | XcronTransportError {
    try {
      return this.apiError(method, path, response, this.parseEnvelope(method, path, response, text, attempts), attempts);
    } catch (e) {
      return e as XcronTransportError;
    }
  }
}
