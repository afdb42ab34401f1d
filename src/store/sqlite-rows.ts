/**
 * Rows of the SQLite store and their conversion to and from Task and Run: scalar columns as they
 * are, the rest of a task's definition as JSON in `spec`, a run's shard results as JSON.
 */
import type { PauseInfo, Run, RunStatus, Task } from '../task/index.js';

export interface TaskRow {
  id: string;
  slot: number;
  type: number;
  format: string;
  state: string;
  next_fire_time: number | null;
  spec: string;
  idempotency_key: string | null;
  create_time: number;
  update_time: number;
  last_fire_time: number | null;
  last_status: string | null;
  run_count: number;
  /** PauseInfo as JSON; null when none (schema 8). */
  pause: string | null;
}

/** The parts of a Task kept in the `spec` JSON column. */
type SpecColumn = Pick<
  Task,
  | 'name'
  | 'timezone'
  | 'callback'
  | 'timeout_ms'
  | 'retry'
  | 'misfire'
  | 'overlap'
  | 'start_time'
  | 'end_time'
  | 'on_success'
  | 'alert_url'
  | 'max_consecutive_failures'
  | 'completion'
  | 'async_timeout_ms'
  | 'tags'
  | 'jitter_ms'
  | 'flow_key'
  | 'flow'
>;

/**
 * The primary-key range holding a task's runs: run ids are fireId(task_id, ms) = "<task_id>:<ms>",
 * and ';' is the character after ':'. Queries also check task_id, so the range is only a narrowing.
 */
export function runRange(taskId: string): [string, string] {
  return [`${taskId}:`, `${taskId};`];
}

export function rowToTask(r: TaskRow): Task {
  const s = JSON.parse(r.spec) as Partial<SpecColumn> & Pick<SpecColumn, 'timezone' | 'callback' | 'misfire' | 'overlap'>;
  s.callback.urls ??= null;
  s.callback.route ??= null;
  return {
    id: r.id,
    slot: r.slot,
    type: r.type as Task['type'],
    format: r.format,
    name: s.name ?? null,
    timezone: s.timezone,
    callback: s.callback,
    timeout_ms: s.timeout_ms ?? null,
    retry: s.retry ?? null,
    misfire: s.misfire,
    overlap: s.overlap,
    start_time: s.start_time ?? null,
    end_time: s.end_time ?? null,
    on_success: s.on_success ?? null,
    alert_url: s.alert_url ?? null,
    max_consecutive_failures: s.max_consecutive_failures ?? null,
    completion: s.completion ?? 'sync',
    async_timeout_ms: s.async_timeout_ms ?? null,
    tags: s.tags ?? null,
    // Pacing options are present only when set (tasks without them read back as written).
    ...(s.jitter_ms != null ? { jitter_ms: s.jitter_ms } : {}),
    ...(s.flow_key != null ? { flow_key: s.flow_key } : {}),
    ...(s.flow != null ? { flow: s.flow } : {}),
    idempotency_key: r.idempotency_key,
    state: r.state as Task['state'],
    create_time: r.create_time,
    update_time: r.update_time,
    next_fire_time: r.next_fire_time,
    last_fire_time: r.last_fire_time,
    last_status: r.last_status,
    run_count: r.run_count,
    ...(r.pause ? { pause: JSON.parse(r.pause) as PauseInfo } : {}),
  };
}

/** The `pause` column of a task: its PauseInfo as JSON, or null. */
export const pauseColumn = (t: Task): string | null => (t.pause ? JSON.stringify(t.pause) : null);

/**
 * A task as the values of the tasks table's INSERT, in column order (see TASK_ROW_KEY). Built where
 * the task is made (the main thread), so only flat values cross to the store thread.
 */
export type TaskInsertRow = [
  id: string,
  slot: number,
  type: number,
  format: string,
  state: string,
  next_fire_time: number | null,
  spec: string,
  idempotency_key: string | null,
  create_time: number,
  update_time: number,
  last_fire_time: number | null,
  last_status: string | null,
  run_count: number,
  pause: string | null,
];
/** The index of idempotency_key in a TaskInsertRow. */
export const TASK_ROW_KEY = 7;

export function taskRow(t: Task): TaskInsertRow {
  return [t.id, t.slot, t.type, t.format, t.state, t.next_fire_time, specOf(t), t.idempotency_key, t.create_time, t.update_time, t.last_fire_time, t.last_status, t.run_count, pauseColumn(t)];
}

export function specOf(t: Task): string {
  const s: SpecColumn = {
    name: t.name,
    timezone: t.timezone,
    callback: t.callback,
    timeout_ms: t.timeout_ms,
    retry: t.retry,
    misfire: t.misfire,
    overlap: t.overlap,
    start_time: t.start_time,
    end_time: t.end_time,
    on_success: t.on_success,
    alert_url: t.alert_url,
    max_consecutive_failures: t.max_consecutive_failures,
    completion: t.completion,
    async_timeout_ms: t.async_timeout_ms,
    tags: t.tags ?? null,
  };
  if (t.jitter_ms != null) s.jitter_ms = t.jitter_ms;
  if (t.flow_key != null) s.flow_key = t.flow_key;
  if (t.flow != null) s.flow = t.flow;
  return JSON.stringify(s);
}

export interface RunRow extends Omit<Run, 'status' | 'shards' | 'request'> {
  status: string;
  shards: string | null;
  request: string | null;
}

export const rowToRun = (r: RunRow): Run => ({
  run_id: r.run_id,
  task_id: r.task_id,
  slot: r.slot,
  node: r.node,
  scheduled_time: r.scheduled_time,
  start_time: r.start_time,
  end_time: r.end_time,
  attempts: r.attempts,
  status: r.status as RunStatus,
  http_status: r.http_status,
  error: r.error,
  duration_ms: r.duration_ms,
  response_body: r.response_body,
  shards: r.shards ? (JSON.parse(r.shards) as Run['shards']) : null,
  deadline: r.deadline ?? null,
  message: r.message ?? null,
  output: r.output ?? null,
  request: r.request ? (JSON.parse(r.request) as Run['request']) : null,
  retried_by: r.retried_by ?? null,
});

export const RUN_COLS =
  'run_id, task_id, slot, node, scheduled_time, start_time, end_time, attempts, status, http_status, error, duration_ms, response_body, shards, deadline, message, output, request, retried_by';
