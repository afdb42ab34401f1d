/**
 * The shapes of the API's answers (the `data` of the envelope), as zod schemas. Routes answer
 * through `reply`, typed by these; the OpenAPI document shows them. Objects are closed: a field
 * not declared here is a contract change, and the test suite's response check catches it.
 */
import { z } from 'zod';
import { ROUTES } from '../../task/types.js';

const ms = (description: string) => z.number().meta({ description });
const nullableMs = (description: string) => z.number().nullable().meta({ description });

export const TASK_STATES = ['active', 'paused', 'completed'] as const;
export const RUN_STATUSES = ['PENDING', 'RUNNING', 'SUCCESS', 'FAIL', 'SKIPPED', 'MISSED'] as const;

export const TaskId = z.string().meta({ description: 'Task id (1 to 64 characters of A-Z a-z 0-9 _ -).', examples: ['V1StGXR8_Z5jdHi6B-myT'] });
export const RunId = z.string().meta({ description: 'Run id, the same as the fire id: `<task_id>:<scheduled ms>`.', examples: ['V1StGXR8_Z5jdHi6B-myT:1795280400000'] });
/** The body of the endpoints that take just a task id. */
export const TaskIdInput = z.strictObject({ task_id: TaskId }).meta({ id: 'TaskIdInput' });
export const Cursor = z.string().nullable().meta({ description: 'Pass as `cursor` for the next page; null on the last page.' });

export const Retry = z
  .object({ max_attempts: z.int(), backoff_ms: z.int(), max_backoff_ms: z.int() })
  .meta({ id: 'Retry', description: 'A task\'s retry policy.' });

export const CallbackView = z
  .object({
    url: z.string().optional().meta({ description: 'The target (with `urls`, the first of them). Absent for a queue target or an executor group.' }),
    target: z.string().optional().meta({ description: 'The named queue target (see the queue targets docs); no broker URL is shown.' }),
    key: z.string().optional().meta({ description: "The queue target's stream name or routing key override, when set." }),
    executor: z.string().optional().meta({ description: 'The executor group whose live instances receive the fires (with `route`); `url` is absent then.' }),
    body: z.unknown().meta({ description: 'The JSON body sent with every fire, exactly as given.' }),
    method: z.enum(['PUT', 'PATCH', 'DELETE', 'GET']).optional().meta({ description: 'Present when not POST.' }),
    headers: z.record(z.string(), z.string()).optional(),
    urls: z.array(z.string()).optional(),
    route: z.enum(ROUTES).nullable().optional(),
  })
  .meta({ id: 'Callback', description: 'The callback of a task.' });

export const PauseView = z
  .object({
    kind: z.enum(['manual', 'auto']).meta({ description: 'manual: paused through the API (pauseTask, pauseTasks, updateTask); auto: after max_consecutive_failures failures in a row.' }),
    note: z.string().nullable().meta({ description: "The operator's note (manual; null when none was given), or the reason (auto), e.g. \"auto-paused after 3 consecutive failures: HTTP 500\"." }),
    by: z.string().nullable().meta({ description: "The API token's name that paused it (null without tokens, and for auto)." }),
    at: ms('When it was paused, ms epoch.'),
  })
  .meta({ id: 'Pause', description: 'Why a paused task is paused. Present while the task is paused (not for tasks paused before this field existed).' });

export const TaskView = z
  .object({
    task_id: TaskId,
    create_time: z.string().meta({ description: 'Unix seconds as a decimal string (as the original xcron).' }),
    type: z.int().meta({ description: '1 periodic, 2 one-shot.' }),
    format: z.string(),
    description: z.string().nullable().meta({ description: 'The schedule in plain language (null when it cannot be described).', examples: ['At 09:00, Monday through Friday (Europe/Berlin)'] }),
    run_count: z.int(),
    callback: CallbackView,
    state: z.enum(TASK_STATES),
    next_fire_time: nullableMs('Next fire, ms epoch; null when none.'),
    last_fire_time: nullableMs('Last fire, ms epoch.'),
    last_status: z.string().nullable().meta({ description: 'Outcome of the last run: SUCCESS, FAIL, SKIPPED, MISSED, or null.' }),
    timezone: z.string(),
    misfire: z.enum(['fire_once', 'skip']),
    overlap: z.enum(['allow', 'skip', 'queue']),
    name: z.string().optional(),
    timeout_ms: z.int().optional(),
    retry: Retry.optional(),
    idempotency_key: z.string().optional(),
    start_time: ms('Window start, ms epoch.').optional(),
    end_time: ms('Window end, ms epoch.').optional(),
    on_success: z.array(TaskId).optional(),
    alert_url: z.string().optional(),
    max_consecutive_failures: z.int().optional(),
    completion: z.literal('async').optional().meta({ description: 'Present when the task completes asynchronously.' }),
    async_timeout_ms: z.int().optional(),
    tags: z.array(z.string()).optional(),
    pause: PauseView.optional(),
    jitter_ms: z.int().optional(),
    flow_key: z.string().optional(),
    flow: z.object({ rate: z.int(), period_ms: z.int(), parallelism: z.int() }).optional(),
  })
  .meta({ id: 'Task', description: 'A task. Optional fields appear when the task has them.' });

const Percentiles = z.object({ p50: z.number().nullable(), p99: z.number().nullable() });

export const TaskRunStats = z
  .object({
    window_runs: z.int(),
    fires: z.int(),
    successes: z.int(),
    failures: z.int(),
    skipped: z.int(),
    missed: z.int(),
    success_rate: z.number().nullable(),
    lateness_ms: Percentiles,
    duration_ms: Percentiles,
  })
  .meta({ id: 'TaskRunStats', description: 'Figures over the task\'s newest retained runs (at most 200).' });

export const TaskDetail = TaskView.extend({ stats: TaskRunStats }).meta({ id: 'TaskDetail', description: 'A task with figures over its recent runs (queryTask).' });

export const ShardResult = z
  .object({ index: z.int(), url: z.string(), ok: z.boolean(), attempts: z.int(), http_status: z.int().nullable(), error: z.string().nullable() })
  .meta({ id: 'ShardResult', description: 'One target of a broadcast run.' });

export const RunView = z
  .object({
    run_id: RunId,
    task_id: TaskId,
    node: z.string().nullable().meta({ description: 'The node that fired it.' }),
    scheduled_time: ms('Scheduled fire time, ms epoch.'),
    start_time: nullableMs('First attempt, ms epoch.'),
    end_time: nullableMs('Finish, ms epoch.'),
    attempts: z.int(),
    status: z.enum(RUN_STATUSES),
    http_status: z.int().nullable(),
    error: z.string().nullable(),
    duration_ms: z.number().nullable(),
    response_body: z.string().nullable().meta({ description: 'First 1 KiB of the last answer.' }),
    shards: z.array(ShardResult).optional(),
    deadline: ms('An async run awaiting its report: when it times out, ms epoch.').optional(),
    message: z.string().optional().meta({ description: 'The worker\'s reported message.' }),
    output: z.unknown().optional().meta({ description: 'The worker\'s reported output (any JSON).' }),
    request: z
      .object({ body: z.unknown().optional(), headers: z.record(z.string(), z.string()).optional() })
      .optional()
      .meta({ description: 'The one-off body and headers this run sends instead of (headers: besides) the task\'s (triggerTask with a body, its retries).' }),
    retry_of: z.string().optional().meta({ description: 'A retry run (retryRun): the run it retries.' }),
    fire_id: z.string().optional().meta({ description: 'A retry run: the fire id its callbacks carry (the replayed run\'s).' }),
    retried_by: z.string().optional().meta({ description: 'A FAIL run retried with retryRun: the retry run.' }),
  })
  .meta({ id: 'Run', description: 'A run record (one fire).' });

export const HealthData = z.object({ status: z.literal('ok'), version: z.string() }).meta({ id: 'Health' });
export const ReadyData = z.object({ ready: z.literal(true), store: z.literal(true), member: z.literal(true) }).meta({ id: 'Ready' });

export const ClusterData = z
  .object({
    node: z.string(),
    members: z.array(z.string()),
    slots: z.array(z.object({ slot: z.int(), owner: z.string().nullable(), epoch: z.number().nullable() })),
  })
  .meta({ id: 'Cluster', description: 'This node, the live members, and slot ownership with epochs.' });

export const CreateTaskData = z.object({ task_id: TaskId, next_fire_time: nullableMs('First fire, ms epoch; null when none.') }).meta({ id: 'CreatedTask' });
export const TaskStateData = z.object({ task_id: TaskId, state: z.enum(TASK_STATES) }).meta({ id: 'TaskState' });
export const TaskScheduleData = TaskStateData.extend({ next_fire_time: nullableMs('Next fire, ms epoch; null when none.') }).meta({ id: 'TaskSchedule' });
export const TriggerTaskData = z.object({ task_id: TaskId, run_id: RunId, scheduled_time: ms('The manual run\'s fire time, ms epoch.') }).meta({ id: 'TriggeredRun' });
export const ListTasksData = z.object({ tasks: z.array(TaskView), next_cursor: Cursor }).meta({ id: 'TaskPage' });
export const TaskRunsData = z.object({ runs: z.array(RunView), next_cursor: Cursor }).meta({ id: 'RunPage' });

const Summary = z.object({ count: z.int(), p50: z.number().nullable(), p90: z.number().nullable(), p99: z.number().nullable(), max: z.number().nullable() });
export const LiveStats = z
  .object({
    since: ms('When this node started counting, ms epoch.'),
    fired: z.int(),
    skipped: z.int(),
    missed: z.int(),
    succeeded: z.int(),
    failed: z.int(),
    success_rate: z.number().nullable(),
    failure_rate: z.number().nullable(),
    lateness_ms: Summary,
    callback_latency_ms: Summary,
  })
  .meta({ id: 'LiveStats', description: 'This node\'s counts since start, and percentiles over its last 10,000 fires.' });

export const StatsData = z
  .object({
    node: z.string(),
    tasks: z.object({ active: z.int(), paused: z.int(), completed: z.int() }),
    runs: z.record(z.string(), z.int()).meta({ description: 'Retained runs by status.' }),
    live: LiveStats.nullable(),
  })
  .meta({ id: 'Stats' });

export const ReportRunData = z.object({ run_id: RunId, status: z.enum(RUN_STATUSES).meta({ description: 'The run\'s status after the report: the reported SUCCESS or FAIL.' }) }).meta({ id: 'ReportedRun' });
export const AppendRunLogData = z.object({ run_id: RunId, accepted: z.int(), dropped: z.int().meta({ description: 'Lines dropped because the run\'s log is full.' }) }).meta({ id: 'AppendedLog' });
export const RunLogData = z
  .object({
    run_id: RunId,
    status: z.enum(RUN_STATUSES),
    finished: z.boolean(),
    lines: z.array(z.object({ seq: z.int(), time: ms('When the line arrived, ms epoch.'), line: z.string() })),
    next_since: z.int().meta({ description: 'Pass as `since` to read on.' }),
    run: RunView,
  })
  .meta({ id: 'RunLog' });

export const NextFiresData = z
  .object({ times: z.array(z.number()), timezone: z.string(), description: z.string().nullable().meta({ description: 'The schedule in plain language.' }), truncated: z.literal(true).optional() })
  .meta({ id: 'NextFires', description: 'Fire times, ms epoch, ascending; `truncated` when the time budget ended the list early.' });
