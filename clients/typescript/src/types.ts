/**
 * Request and response types of the xcron HTTP API. Field names are the wire names (snake_case);
 * times are ms epoch numbers unless a field says otherwise.
 */

/** Every `/xcron/*`, `/healthz` and `/readyz` answer. */
export interface Envelope<T> {
  /** A fresh UUID v4 per request (also the `X-Request-Id` response header unless the caller sent one). */
  uuid: string;
  /** 0 on success, else one of {@link ErrorCodes}. */
  code: number;
  message: string;
  data: T | null;
}

/** 1 periodic (cron), 2 one-shot (unix timestamp). */
export type TaskType = 1 | 2;
export type TaskState = 'active' | 'paused' | 'completed';
export type MisfirePolicy = 'fire_once' | 'skip';
export type OverlapPolicy = 'allow' | 'skip' | 'queue';
export type CallbackMethod = 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'GET';
/** With `urls`: the first five. With `executor`: any (first, last, lru, lfu and busy_over only there). */
export type RouteStrategy = 'failover' | 'round_robin' | 'random' | 'consistent_hash' | 'broadcast' | 'first' | 'last' | 'lru' | 'lfu' | 'busy_over';
export type CompletionMode = 'sync' | 'async';
export type RunStatus = 'PENDING' | 'RUNNING' | 'SUCCESS' | 'FAIL' | 'SKIPPED' | 'MISSED';

export interface RetryPolicy {
  /** 1..100 (default 3). */
  max_attempts?: number;
  /** Base of the exponential backoff (default 1000). */
  backoff_ms?: number;
  /** Cap of one delay (default max(60000, backoff_ms)). */
  max_backoff_ms?: number;
}

/** The callback of a task as a request gives it. Either `url`, `urls` (+ `route`), `target`, or `executor` (+ `route`). */
export interface CallbackSpec {
  url?: string;
  /** An executor group: each fire goes to a live instance of it, picked by `route` (default round_robin). */
  executor?: string;
  urls?: string[];
  route?: RouteStrategy;
  /** Sent as the JSON body of every callback (default `{}`). */
  body?: Record<string, unknown>;
  method?: CallbackMethod;
  /** Extra request headers; transport headers and `X-Xcron-*` are reserved. */
  headers?: Record<string, string>;
}

/** Options shared by createTask and updateTask. */
export interface TaskOptions {
  name?: string | null;
  /** IANA timezone name (default: the server's `default_timezone`). */
  timezone?: string;
  /** Per-attempt timeout, 1..300000. */
  timeout_ms?: number | null;
  retry?: RetryPolicy | null;
  misfire?: MisfirePolicy;
  overlap?: OverlapPolicy;
  paused?: boolean;
  /** Periodic tasks fire only inside [start_time, end_time] (unix s or ms). */
  start_time?: number | null;
  end_time?: number | null;
  /** Task ids triggered once each when a run of this task succeeds. */
  on_success?: string[] | null;
  alert_url?: string | null;
  max_consecutive_failures?: number | null;
  completion?: CompletionMode;
  /** Report deadline of an async run, 1000 ms .. 7 days. */
  async_timeout_ms?: number | null;
  /** Up to 16 labels of 1..64 characters (`A-Za-z0-9_.:-`), for listTasks `tag` and the bulk actions. */
  tags?: string[] | null;
  /** Periodic tasks: each fire goes out at a deterministic offset in [tick, tick + jitter_ms), 0 .. 3,600,000. */
  jitter_ms?: number | null;
  /** The fires wait on the server's flow limit `[flow.<key>]`. Not with `flow`. */
  flow_key?: string | null;
  /** The task's own flow limit. Not with `flow_key`. */
  flow?: FlowLimit | null;
}

/** A flow limit: at most `rate` fires per `period_ms` (default 1000) and `parallelism` runs in flight (0: none). */
export interface FlowLimit {
  rate?: number;
  period_ms?: number;
  parallelism?: number;
}

export interface CreateTaskRequest extends TaskOptions {
  type: TaskType;
  /** Type 1: a cron expression (or `@every 30s`); type 2: unix seconds (10 digits) or ms (13 digits). */
  format: string;
  callback: CallbackSpec;
  /** The same key again returns the existing task instead of creating a duplicate. */
  idempotency_key?: string;
}

export interface CreateTaskResult {
  task_id: string;
  /** Null when the task is already completed. */
  next_fire_time: number | null;
}

/** One task's result in a createTasks answer: its id, or why it was not stored. */
export type CreateTasksItem = (CreateTaskResult & { existing?: true }) | { code: number; message: string };

export interface CreateTasksResult {
  /** One per task, in the order given. */
  results: CreateTasksItem[];
  succeeded: number;
  failed: number;
}

export interface UpdateTaskRequest extends TaskOptions {
  task_id: string;
  format?: string;
  callback?: CallbackSpec;
}

export interface UpdateTaskResult {
  task_id: string;
  state: TaskState;
  next_fire_time: number | null;
}

export interface PauseTaskResult {
  task_id: string;
  state: TaskState;
}

export type ResumeTaskResult = UpdateTaskResult;

/** Per-run overrides of a triggerTask call. */
export interface TriggerOptions {
  /** Sent as this run's body instead of the task's. */
  body?: Record<string, unknown>;
  /** Added to the task's headers for this run (a name in both: this value). */
  headers?: Record<string, string>;
}

export interface TriggerTaskResult {
  task_id: string;
  /** The fire id of the manual run: `<task_id>:<scheduled ms>`. */
  run_id: string;
  scheduled_time: number;
}

/** The callback as the server shows it. */
export interface CallbackView {
  url: string;
  /** The executor group, for a task routed to executors (then `url` is absent). */
  executor?: string;
  body: Record<string, unknown>;
  method?: CallbackMethod;
  headers?: Record<string, string>;
  urls?: string[];
  route?: RouteStrategy;
}

export interface Percentiles {
  p50: number | null;
  p99: number | null;
}

/** queryTask's per-task figures over its newest retained runs (at most 200). */
export interface TaskRunStats {
  window_runs: number;
  fires: number;
  successes: number;
  failures: number;
  skipped: number;
  missed: number;
  success_rate: number | null;
  lateness_ms: Percentiles;
  duration_ms: Percentiles;
}

/** A task as queryTask and listTasks show it. */
export interface TaskView {
  task_id: string;
  /** Creation time, unix seconds as a decimal string (the original xcron's form). */
  create_time: string;
  type: TaskType;
  format: string;
  run_count: number;
  callback: CallbackView;
  state: TaskState;
  next_fire_time: number | null;
  last_fire_time: number | null;
  last_status: string | null;
  timezone: string;
  misfire: MisfirePolicy;
  overlap: OverlapPolicy;
  name?: string;
  timeout_ms?: number;
  retry?: Required<RetryPolicy>;
  idempotency_key?: string;
  start_time?: number;
  end_time?: number;
  on_success?: string[];
  alert_url?: string;
  max_consecutive_failures?: number;
  completion?: CompletionMode;
  async_timeout_ms?: number;
  tags?: string[];
  jitter_ms?: number;
  flow_key?: string;
  flow?: Required<FlowLimit>;
  /** Why a paused task is paused (while paused). */
  pause?: PauseInfo;
}

/** Why a paused task is paused: an operator's pause with its note, or the auto-pause with its reason. */
export interface PauseInfo {
  /** manual: pauseTask / pauseTasks / updateTask; auto: after max_consecutive_failures failures in a row. */
  kind: 'manual' | 'auto';
  /** The operator's note (null when none), or the auto-pause reason. */
  note: string | null;
  /** The API token's name that paused it (null without tokens, and for auto). */
  by: string | null;
  /** When, ms epoch. */
  at: number;
}

/** queryTask adds the task's run figures. */
export interface TaskDetail extends TaskView {
  stats: TaskRunStats;
}

export interface ShardResult {
  index: number;
  url: string;
  ok: boolean;
  attempts: number;
  http_status: number | null;
  error: string | null;
}

/** One execution record. `run_id` is the fire id. */
export interface RunView {
  run_id: string;
  task_id: string;
  node: string | null;
  scheduled_time: number;
  start_time: number | null;
  end_time: number | null;
  attempts: number;
  status: RunStatus;
  http_status: number | null;
  error: string | null;
  duration_ms: number | null;
  /** The first 1 KiB of the callback's answer. */
  response_body: string | null;
  shards?: ShardResult[];
  /** An async run awaiting its report: when it times out. */
  deadline?: number;
  /** From the worker's report. */
  message?: string;
  output?: unknown;
}

export interface ListTasksQuery {
  state?: TaskState;
  /** A name prefix. */
  name?: string;
  /** Only tasks carrying this tag. */
  tag?: string;
  /** Only tasks whose last run ended with this status. */
  last_status?: 'SUCCESS' | 'FAIL' | 'SKIPPED' | 'MISSED';
  /** 1..1000 (server default 50). */
  limit?: number;
  cursor?: string | null;
}

export interface TaskPage {
  tasks: TaskView[];
  next_cursor: string | null;
}

export interface TaskRunsQuery {
  limit?: number;
  cursor?: string | null;
}

export interface RunPage {
  runs: RunView[];
  next_cursor: string | null;
}

export interface LiveSummary {
  count: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
}

/** This node's in-memory figures (since its start). */
export interface LiveStats {
  since: number;
  fired: number;
  skipped: number;
  missed: number;
  succeeded: number;
  failed: number;
  success_rate: number | null;
  failure_rate: number | null;
  lateness_ms: LiveSummary;
  callback_latency_ms: LiveSummary;
}

export interface Stats {
  node: string;
  tasks: Record<TaskState, number>;
  /** Retained runs by status. */
  runs: Partial<Record<RunStatus, number>>;
  live: LiveStats | null;
}

export interface SlotInfo {
  slot: number;
  owner: string | null;
  epoch: number | null;
}

export interface ClusterInfo {
  node: string;
  members: string[];
  slots: SlotInfo[];
}

export interface Health {
  status: 'ok';
  version: string;
}

export interface Readiness {
  ready: true;
  store: true;
  member: true;
}

export interface ReportRunRequest {
  run_id: string;
  /** The `X-Xcron-Report-Token` the callback carried. */
  token: string;
  status: 'SUCCESS' | 'FAIL';
  /** Cut at 4096 characters. */
  message?: string | null;
  /** Any JSON value up to 64 KiB. */
  output?: unknown;
}

export interface ReportRunResult {
  run_id: string;
  status: RunStatus;
}

export interface AppendRunLogRequest {
  run_id: string;
  token: string;
  /** Up to 1000 lines per call. */
  lines: string[];
}

export interface AppendRunLogResult {
  run_id: string;
  accepted: number;
  dropped: number;
}

export interface RunLogQuery {
  /** The last `seq` already read (default 0). */
  since?: number;
  /** 1..5000 (default 500). */
  limit?: number;
}

export interface RunLogLine {
  seq: number;
  time: number;
  line: string;
}

export interface RunLogPage {
  run_id: string;
  status: RunStatus;
  finished: boolean;
  lines: RunLogLine[];
  next_since: number;
  run: RunView;
}
