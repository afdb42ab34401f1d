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
  url: string;
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
}
