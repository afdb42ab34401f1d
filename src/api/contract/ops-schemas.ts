/** Request and answer shapes of the operator endpoints (src/api/ops.ts) and triggerTask's body. */
import { z } from 'zod';
import { RUN_STATUSES, RunView, TaskId } from './schemas.js';

const Cursor = z.string().nullable().meta({ description: 'Pass as `cursor` for the next page; null on the last page.' });
const Ms = z.int().min(0).meta({ description: 'ms since the epoch.' });
const Tag = z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/);

export const TriggerTaskInput = z
  .strictObject({
    task_id: TaskId,
    body: z.record(z.string(), z.unknown()).nullable().optional().meta({ description: 'A JSON object sent as this run\'s body instead of the task\'s (within `[callback] body_limit`).' }),
    headers: z.record(z.string(), z.string()).nullable().optional().meta({ description: 'Headers added to the task\'s for this run (a name in both: the run\'s value).' }),
  })
  .meta({ id: 'TriggerTaskInput' });

export const RunsQueryParams = z.object({
  status: z.enum(RUN_STATUSES).optional().meta({ description: 'Only runs with this status.' }),
  from: z.string().regex(/^\d{1,16}$/).optional().meta({ description: 'scheduled_time at or after, ms epoch.' }),
  to: z.string().regex(/^\d{1,16}$/).optional().meta({ description: 'scheduled_time at or before, ms epoch.' }),
  name_prefix: z.string().optional().meta({ description: 'Only runs of tasks whose name starts with this.' }),
  task_id: TaskId.optional(),
  replayed: z.enum(['true', 'false']).optional().meta({ description: '`false`: only runs not retried yet (with status=FAIL: the dead-letter list); `true`: only runs retried.' }),
  limit: z.string().regex(/^\d+$/).optional().meta({ description: 'Page size, 1 to 1000 (default 50).' }),
  cursor: z.string().optional().meta({ description: 'The `next_cursor` of the previous page.' }),
});

export const RunsPageData = z
  .object({ runs: z.array(RunView.extend({ task_name: z.string().optional().meta({ description: 'The task\'s name, when it has one.' }) })), next_cursor: Cursor })
  .meta({ id: 'RunsAcrossTasks' });

export const RetryRunInput = z.strictObject({ run_id: z.string() }).meta({ id: 'RetryRunInput' });
export const RetryRunData = z
  .object({ run_id: z.string().meta({ description: 'The new run: `<run_id>:r<N>`.' }), task_id: TaskId, retry_of: z.string(), scheduled_time: z.number() })
  .meta({ id: 'RetriedRun' });

export const RetryRunsInput = z
  .strictObject({
    status: z.literal('FAIL').nullable().optional(),
    task_id: TaskId.nullable().optional(),
    name_prefix: z.string().nullable().optional(),
    from: Ms.nullable().optional(),
    to: Ms.nullable().optional(),
    limit: z.int().min(1).max(1000).nullable().optional().meta({ description: 'At most this many runs (default 100).' }),
    dry_run: z.boolean().nullable().optional(),
  })
  .meta({ id: 'RetryRunsInput' });
export const RetryRunsData = z
  .object({
    count: z.int(),
    run_ids: z.array(z.string()),
    remaining: z.int().meta({ description: 'Matching FAIL runs beyond `limit` left for another call (older ones), counted up to 10,000.' }),
    remaining_capped: z.boolean().meta({ description: 'True when more than 10,000 runs are left (`remaining` shows 10,000).' }),
  })
  .meta({ id: 'RetriedRuns' });

export const BulkInput = z
  .strictObject({
    tag: Tag.nullable().optional(),
    name_prefix: z.string().min(1).nullable().optional(),
    dry_run: z.boolean().nullable().optional(),
  })
  .meta({ id: 'BulkInput', description: 'Exactly one selector: `tag` or `name_prefix`.' });
export const PauseNote = z.string().max(500).nullable().optional().meta({ description: 'Why the task is paused (at most 500 characters): kept with who paused it and when, shown by queryTask/listTasks (`pause`) and the dashboard, cleared on resume.' });
export const PauseTaskInput = z.strictObject({ task_id: TaskId, note: PauseNote }).meta({ id: 'PauseTaskInput' });
export const PauseTasksInput = BulkInput.extend({ note: PauseNote }).meta({ id: 'PauseTasksInput', description: 'Exactly one selector: `tag` or `name_prefix`; `note` is recorded on every task paused.' });
export const BulkData = z
  .object({ count: z.int(), task_ids: z.array(TaskId).meta({ description: 'The first 1,000 tasks changed (or that would change).' }), dry_run: z.boolean() })
  .meta({ id: 'BulkResult' });

export const ReportQueryParams = z.object({ days: z.string().regex(/^\d{1,3}$/).optional().meta({ description: 'Days ending today (UTC), 1 to 366 (default 30).' }) });
export const ReportData = z
  .object({
    days: z.array(
      z.object({
        date: z.string().meta({ description: 'YYYY-MM-DD (UTC).' }),
        success: z.int(),
        fail: z.int(),
        skipped: z.int(),
        missed: z.int(),
        success_rate: z.number().nullable(),
        lateness_p50_ms: z.number().nullable().meta({ description: 'Upper edge of the lateness bucket holding the median.' }),
        lateness_p99_ms: z.number().nullable(),
      }),
    ),
    lateness_bucket_edges_ms: z.array(z.number()),
  })
  .meta({ id: 'DailyReport' });
