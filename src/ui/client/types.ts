/**
 * The shapes of the JSON API's answers as the dashboard reads them (the public wire format, see the
 * API docs). Optional fields are the ones the server leaves out when unset.
 */

export type TaskState = 'active' | 'paused' | 'completed';
export type TaskType = 1 | 2;

export interface Retry {
  max_attempts: number;
  backoff_ms: number;
  max_backoff_ms: number;
}

export interface CallbackView {
  /** Absent for a queue target (`target`, `key`). */
  url?: string;
  /** A named queue target (the server's [targets.<name>]). */
  target?: string;
  /** The queue target's stream name or routing key override. */
  key?: string;
  /** An executor group (then `url` is absent; see #/executors). */
  executor?: string;
  urls?: string[];
  route?: string;
  method?: string;
  headers?: Record<string, string>;
  body?: Record<string, unknown>;
}

/** queryTask's data (and one row of listTasks). */
export interface TaskView {
  task_id: string;
  /** Unix seconds, as a string. */
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
  misfire: string;
  overlap: string;
  name?: string;
  timeout_ms?: number;
  retry?: Retry;
  idempotency_key?: string;
  start_time?: number;
  end_time?: number;
  on_success?: string[];
  alert_url?: string;
  max_consecutive_failures?: number;
  completion?: 'sync' | 'async';
  async_timeout_ms?: number;
  tags?: string[];
  jitter_ms?: number;
  flow_key?: string;
  flow?: { rate: number; period_ms: number; parallelism: number };
  /** The schedule in plain language. */
  description?: string;
  /** Why a paused task is paused (while paused). */
  pause?: PauseView;
  /** queryTask only: figures over the newest retained runs. */
  stats?: TaskStats;
}

/** Why a paused task is paused: an operator's pause and note, or the auto-pause and its reason. */
export interface PauseView {
  kind: 'manual' | 'auto';
  note: string | null;
  by: string | null;
  at: number;
}

/** queryTask's `stats`. */
export interface TaskStats {
  window_runs?: number;
  fires?: number;
  successes?: number;
  failures?: number;
  skipped?: number;
  missed?: number;
  success_rate?: number | null;
  lateness_ms?: Percentiles;
  duration_ms?: Percentiles;
}

export interface TaskPage {
  tasks?: TaskView[];
  next_cursor: string | null;
}

/** One target of a broadcast run: its outcome fields are a run's. */
export interface ShardView extends Pick<RunView, 'attempts' | 'http_status' | 'error'> {
  index: number;
  url: string;
  ok: boolean;
}

export interface RunView {
  run_id: string;
  task_id?: string;
  /** /xcron/runs: the task's name, when it has one. */
  task_name?: string;
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
  shards: ShardView[] | null;
  /** Async runs: the report deadline while RUNNING, and the worker's report. */
  deadline?: number;
  message?: string;
  output?: unknown;
  /** A replay: the run it delivers again; on the original, the replay's id. */
  retry_of?: string;
  retried_by?: string;
}

/** /xcron/runLog. */
export interface RunLog {
  run_id: string;
  status: string;
  finished: boolean;
  lines: { seq: number; time: number; line: string }[];
  next_since: number;
  run?: RunView;
}

/** One day of /xcron/report. */
export interface ReportDay {
  date: string;
  success: number;
  fail: number;
  skipped: number;
  missed: number;
  lateness_p50_ms: number | null;
  lateness_p99_ms: number | null;
}

/** pauseTasks / resumeTasks / deleteTasks / retryRuns. */
export interface BulkResult {
  count: number;
  task_ids?: string[];
  run_ids?: string[];
}

export interface RunPage {
  runs?: RunView[];
  next_cursor: string | null;
}

export interface Percentiles {
  p50?: number | null;
  p99?: number | null;
}

/** The scheduler's counters since this node started (stats.live). */
export interface LiveStats {
  since?: number;
  fired?: number;
  skipped?: number;
  missed?: number;
  succeeded?: number;
  failed?: number;
  success_rate?: number | null;
  lateness_ms?: Percentiles;
  callback_latency_ms?: Percentiles;
}

export interface Stats {
  node: string;
  tasks?: Partial<Record<TaskState, number>>;
  runs?: Record<string, number>;
  live: LiveStats | null;
}

export interface SlotView {
  slot: number;
  owner: string | null;
  epoch?: number | null;
}

export interface ClusterView {
  node: string;
  members?: string[];
  slots?: SlotView[];
}

/** /ui/api/next-fires. */
export interface Fires {
  times: number[];
  timezone: string;
  description?: string;
  truncated?: boolean;
}

/** GET /xcron/executors. */
export interface ExecutorsView {
  now: number;
  groups: { group: string; live: number; instances: { address: string; ttl_ms: number; meta: Record<string, unknown> | null; last_heartbeat: number; registered_at: number; expires_at: number; live: boolean }[] }[];
}
