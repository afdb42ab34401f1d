/** The Task and Run domain types. Field names follow the public API (snake_case). */

export type TaskType = 1 | 2;
export const PERIODIC: TaskType = 1;
export const ONE_SHOT: TaskType = 2;

export type TaskState = 'active' | 'paused' | 'completed';
export type MisfirePolicy = 'fire_once' | 'skip';
export type OverlapPolicy = 'allow' | 'skip' | 'queue';
export type HttpMethod = 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'GET';

export interface RetryPolicy {
  max_attempts: number;
  backoff_ms: number;
  max_backoff_ms: number;
}

/**
 * How a fire picks among several callback targets (`callback.urls`), or among the live instances
 * of an executor group (`callback.executor`). `first`, `last`, `lru`, `lfu` and `busy_over` only
 * make sense with live instances: they are accepted with `executor` only.
 */
export type RouteStrategy = 'failover' | 'round_robin' | 'random' | 'consistent_hash' | 'broadcast' | 'first' | 'last' | 'lru' | 'lfu' | 'busy_over';
/** The strategies of `callback.urls`. */
export const URL_ROUTES: readonly RouteStrategy[] = ['failover', 'round_robin', 'random', 'consistent_hash', 'broadcast'];
/** Every strategy (`callback.executor` takes any of them). */
export const ROUTES: readonly RouteStrategy[] = [...URL_ROUTES, 'first', 'last', 'lru', 'lfu', 'busy_over'];

export interface CallbackSpec {
  /** The target (with `urls`, the first of them). */
  url: string;
  /** Several targets; `route` decides how a fire uses them. Null: just `url`. */
  urls: string[] | null;
  route: RouteStrategy | null;
  /** The JSON body sent with every callback (an object). */
  body: Record<string, unknown>;
  /**
   * The body's exact JSON text as the client gave it, kept when parsing changed one of its numbers
   * (an integer beyond 2^53, `1.50`, `1e3`); it is what callbacks send (and sign). Absent otherwise.
   */
  body_text?: string | undefined;
  method: HttpMethod;
  headers: Record<string, string> | null;
}

/** What a client controls when it creates (or updates) a task. */
export interface TaskSpec {
  type: TaskType;
  format: string;
  name: string | null;
  /** Effective IANA timezone (the request's, or the server default at creation time). */
  timezone: string;
  callback: CallbackSpec;
  timeout_ms: number | null;
  retry: RetryPolicy | null;
  misfire: MisfirePolicy;
  overlap: OverlapPolicy;
  idempotency_key: string | null;
  /** Periodic tasks fire only inside [start_time, end_time] (ms epoch; null = open). */
  start_time: number | null;
  end_time: number | null;
  /** Tasks triggered when a run of this task succeeds (XXL-JOB child tasks). */
  on_success: string[] | null;
  /** Where a final failure is reported (else the global [alert] webhook_url). */
  alert_url: string | null;
  /** Pause the task after this many consecutive final failures (null: the server default). */
  max_consecutive_failures: number | null;
  /**
   * sync: a run ends with the HTTP response. async: a 2xx leaves the run RUNNING until the worker
   * calls reportRun (a 202 Accepted does so for any task).
   */
  completion: CompletionMode;
  /** Deadline for an async run's report, from the callback's answer (null: the server default). */
  async_timeout_ms: number | null;
  /** Labels for filtering and bulk operations (listTasks?tag=, pauseTasks {tag}); null: none. */
  tags: string[] | null;
  /** Periodic tasks: each fire goes out at a deterministic offset in [tick, tick + jitter_ms) (null: at the tick). */
  jitter_ms?: number | null;
  /** The fires wait on the flow limit named `[flow.<key>]` in the configuration (null: none). */
  flow_key?: string | null;
  /** The task's own flow limit (null: none). Not together with flow_key. */
  flow?: FlowLimit | null;
}

/** A flow limit: at most `rate` fires per `period_ms` (0: no rate) and `parallelism` runs in flight (0: no cap). */
export interface FlowLimit {
  rate: number;
  period_ms: number;
  parallelism: number;
}

export type CompletionMode = 'sync' | 'async';

/**
 * Why a paused task is paused: an operator's pause (pauseTask, pauseTasks, updateTask paused: true)
 * with its optional note, or the pause after consecutive failures with its reason. Set when the
 * task is paused, cleared when it leaves the paused state.
 */
export interface PauseInfo {
  /** manual: an API call paused it; auto: it failed max_consecutive_failures times in a row. */
  kind: 'manual' | 'auto';
  /** The operator's note (manual; null when none given), or the reason (auto). */
  note: string | null;
  /** Who paused it: the API token's name (manual, with tokens configured), else null. */
  by: string | null;
  /** When (ms epoch). */
  at: number;
}

export interface Task extends TaskSpec {
  id: string;
  slot: number;
  state: TaskState;
  create_time: number;
  update_time: number;
  next_fire_time: number | null;
  last_fire_time: number | null;
  last_status: string | null;
  run_count: number;
  /** Why it is paused (state 'paused' only); absent otherwise, and for tasks paused before notes existed. */
  pause?: PauseInfo | null | undefined;
}

export type RunStatus = 'PENDING' | 'RUNNING' | 'SUCCESS' | 'FAIL' | 'SKIPPED' | 'MISSED';
export const FINAL_RUN_STATES: readonly RunStatus[] = ['SUCCESS', 'FAIL', 'SKIPPED', 'MISSED'];

/** One execution record. `run_id` is the fire id `<task_id>:<scheduled ms>`. */
export interface Run {
  run_id: string;
  task_id: string;
  slot: number;
  node: string | null;
  scheduled_time: number;
  start_time: number | null;
  end_time: number | null;
  attempts: number;
  status: RunStatus;
  http_status: number | null;
  error: string | null;
  duration_ms: number | null;
  response_body: string | null;
  /** Broadcast runs: one entry per target. */
  shards: ShardResult[] | null;
  /** An async run awaiting its report: when it times out (ms epoch). Null otherwise. */
  deadline: number | null;
  /** The worker's reported message (reportRun). */
  message: string | null;
  /** The worker's reported output (reportRun), as JSON text. */
  output: string | null;
  /** A one-off body/headers for this run only (triggerTask with a body, a retry of such a run). */
  request: RunRequest | null;
  /** The run that delivered this FAIL run again (retryRun), null while it is not replayed. */
  retried_by: string | null;
}

/** What a run sends instead of its task's callback body/headers (fields left null: the task's). */
export interface RunRequest {
  /** The JSON body text. */
  body: string | null;
  headers: Record<string, string> | null;
}

export interface ShardResult {
  index: number;
  url: string;
  ok: boolean;
  attempts: number;
  http_status: number | null;
  error: string | null;
}

export const fireId = (taskId: string, scheduledMs: number): string => `${taskId}:${scheduledMs}`;

/** A retry run's id is the run it retries plus `:r<N>` (`<task_id>:<ms>:r1`, then `:r2`, ...). */
const RETRY_SUFFIX = /:r(\d+)$/;

/** The fire id a run's callback carries: a retry run keeps the fire id of the run it replays. */
export const fireIdOfRun = (runId: string): string => runId.replace(RETRY_SUFFIX, '');

/** The run a retry run replays (null for a run that is no retry). */
export function retryOf(runId: string): string | null {
  const m = RETRY_SUFFIX.exec(runId);
  if (!m) return null;
  const n = Number(m[1]);
  const root = runId.slice(0, m.index);
  return n <= 1 ? root : `${root}:r${n - 1}`;
}

/** The id of the run that retries `runId`: `<fire id>:r<N+1>`. */
export function retryRunId(runId: string): string {
  const m = RETRY_SUFFIX.exec(runId);
  return m ? `${runId.slice(0, m.index)}:r${Number(m[1]) + 1}` : `${runId}:r1`;
}

