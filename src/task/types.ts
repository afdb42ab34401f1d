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

export interface CallbackSpec {
  url: string;
  /** The JSON body sent with every callback (an object). */
  body: Record<string, unknown>;
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
}

export const fireId = (taskId: string, scheduledMs: number): string => `${taskId}:${scheduledMs}`;
