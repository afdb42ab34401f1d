/**
 * Request and response types of the operator endpoints: runs across tasks (and the dead-letter
 * list), replay of failed runs, bulk actions by tag or name prefix, and the daily report. Field
 * names are the wire names; times are ms epoch numbers.
 */
import type { RunStatus, RunView } from './types.js';

/** GET /xcron/runs filters. */
export interface RunsQuery {
  status?: RunStatus;
  /** scheduled_time at or after (ms epoch). */
  from?: number;
  /** scheduled_time at or before (ms epoch). */
  to?: number;
  /** Only runs of tasks whose name starts with this. */
  name_prefix?: string;
  task_id?: string;
  /** false: only runs not retried yet (with status FAIL: the dead-letter list); true: only runs retried. */
  replayed?: boolean;
  /** 1..1000 (server default 50). */
  limit?: number;
  cursor?: string | null;
}

/** A run as GET /xcron/runs shows it: with its task's name when the task has one. */
export interface RunAcrossTasks extends RunView {
  task_name?: string;
}

export interface RunsPage {
  runs: RunAcrossTasks[];
  next_cursor: string | null;
}

export interface RetryRunResult {
  /** The new run: `<run_id>:r<N>`. */
  run_id: string;
  task_id: string;
  /** The failed run it delivers again. */
  retry_of: string;
  scheduled_time: number;
}

/** POST /xcron/retryRuns: which FAIL runs not retried yet to deliver again (newest first). */
export interface RetryRunsRequest {
  status?: 'FAIL';
  task_id?: string;
  name_prefix?: string;
  from?: number;
  to?: number;
  /** At most this many runs, 1..1000 (default 100). */
  limit?: number;
  /** Only list the runs that would be retried. */
  dry_run?: boolean;
}

export interface RetryRunsResult {
  count: number;
  /** The new run ids (with dry_run: the runs that would be retried). */
  run_ids: string[];
  /** Matching FAIL runs beyond `limit`, left for another call (counted up to 10,000). */
  remaining: number;
  /** More than 10,000 runs are left (`remaining` shows 10,000). */
  remaining_capped: boolean;
}

/** The tasks a bulk action acts on: exactly one of `tag` and `name_prefix`. */
export type BulkSelector = { tag: string; name_prefix?: never } | { name_prefix: string; tag?: never };

export interface BulkOptions {
  /** Only report what would change. */
  dry_run?: boolean;
}

/** pauseTask / pauseTasks: why the task is paused. */
export interface PauseOptions {
  /** At most 500 characters; kept with who paused it and when (TaskView.pause), cleared on resume. */
  note?: string;
}

export interface BulkResult {
  count: number;
  /** The first 1,000 tasks changed (or that would change). */
  task_ids: string[];
  dry_run: boolean;
}

export interface ReportDay {
  /** YYYY-MM-DD (UTC). */
  date: string;
  success: number;
  fail: number;
  skipped: number;
  missed: number;
  success_rate: number | null;
  /** Upper edge of the lateness bucket holding the median. */
  lateness_p50_ms: number | null;
  lateness_p99_ms: number | null;
}

export interface DailyReport {
  days: ReportDay[];
  lateness_bucket_edges_ms: number[];
}
