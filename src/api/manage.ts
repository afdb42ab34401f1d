/**
 * Management extensions: updateTask, pauseTask, resumeTask, triggerTask, listTasks, taskRuns,
 * stats. Routes parse the request, call one service operation and map its result; the rules
 * (validation, next fire, the optimistic retry, the child graph, fire ids) live in the service.
 */
import type { Hono } from 'hono';
import { z } from 'zod';
import { Codes, XcronError } from '../errors.js';
import { taskNotFound, type TaskService } from '../service/index.js';
import type { DueKey } from '../store/types.js';
import { UpdateTaskInput, exactBodyText, parseRunRequest, tagProblem, type Task } from '../task/index.js';
import { reply, xcronOperations, type OperationSpec } from './contract/registry.js';
import { ListTasksData, StatsData, TASK_STATES, TaskId, TaskIdInput, TaskRunsData, TaskScheduleData, TaskStateData, TriggerTaskData } from './contract/schemas.js';
import { PauseTaskInput, TriggerTaskInput } from './contract/ops-schemas.js';
import type { ApiDeps } from './deps.js';
import { bodyWithTaskId, decodeCursor, encodeCursor, objectBody, parseLimit, requestText, taskIdOf } from './request.js';
import { pauseByOf } from './pause.js';
import { runView, taskView } from './views.js';

/** The operations of this file (see xcronOperations): under the tag 'tasks' unless they name another. */
const operation = xcronOperations('tasks');

const STATES = TASK_STATES;
const TRIGGER_FIELDS = ['task_id', 'body', 'headers'];
const LAST_STATUSES = ['SUCCESS', 'FAIL', 'SKIPPED', 'MISSED'] as const;
const byId = { body: TaskIdInput, errors: [Codes.TASK_NOT_FOUND] } as const satisfies Partial<OperationSpec>;
const Limit = (max: number) => z.int().min(1).max(max).optional().meta({ description: `Page size, 1 to ${max} (default 50).` });
const CursorQ = z.string().optional().meta({ description: 'The `next_cursor` of the previous page.' });

export const updateTaskOp = operation.change('updateTask', {
  summary: 'Change a task',
  description: 'Fields not given are kept; `callback` given is replaced whole. The next fire is recomputed when the schedule changes; a completed one-shot given a new time becomes active again.',
  body: UpdateTaskInput,
  data: TaskScheduleData,
  errors: [Codes.TASK_NOT_FOUND, Codes.ONESHOT_FORMAT, Codes.ONESHOT_TIME, Codes.CALLBACK_URL, Codes.CRON_INVALID, Codes.TIMEZONE, Codes.INVALID_OPTION, Codes.SSRF_REFUSED, Codes.UNKNOWN_TARGET, Codes.EXECUTOR_GROUP],
});

export const pauseTaskOp = operation.change('pauseTask', {
  ...byId,
  body: PauseTaskInput,
  errors: [Codes.TASK_NOT_FOUND, Codes.BAD_JSON, Codes.INVALID_OPTION],
  summary: 'Pause a task',
  description: 'Stops firing; idempotent (a task paused already keeps its note). The task records who paused it (the API token\'s name), when, and the optional `note`, as `pause`; resuming clears it.',
  data: TaskStateData,
});

export const resumeTaskOp = operation.change('resumeTask', {
  ...byId,
  summary: 'Resume a task',
  description: 'Periodic: continues from now (ticks while paused are not fired); one-shot: keeps its time, firing at once if it passed.',
  data: TaskScheduleData,
});

export const triggerTaskOp = operation.change('triggerTask', {
  ...byId,
  summary: 'Fire a task once now',
  description: 'Fires once now, outside the schedule (also when paused), as a run with its own fire id `<task_id>:<now ms>`. `body` and `headers` are sent for this run only (kept on the run record for its retries and redelivery).',
  body: TriggerTaskInput,
  data: TriggerTaskData,
  errors: [Codes.TASK_NOT_FOUND, Codes.BAD_JSON, Codes.INVALID_OPTION, Codes.TOO_LARGE],
});

export const listTasksOp = operation.read('listTasks', {
  summary: 'List tasks',
  description: 'Tasks ordered by id, a page at a time (stable while tasks are added).',
  query: z.object({
    state: z.enum(STATES).optional().meta({ description: 'Only tasks in this state.' }),
    name: z.string().optional().meta({ description: 'Only tasks whose name starts with this.' }),
    name_prefix: z.string().optional().meta({ description: 'The same as `name`.', deprecated: true }),
    tag: z.string().optional().meta({ description: 'Only tasks carrying this tag.' }),
    last_status: z.enum(LAST_STATUSES).optional().meta({ description: 'Only tasks whose last run ended with this status.' }),
    limit: Limit(1000),
    cursor: CursorQ,
  }),
  data: ListTasksData,
  errors: [Codes.INVALID_OPTION],
});

export const taskRunsOp = operation.read('taskRuns', {
  tag: 'runs',
  summary: "A task's runs",
  description: 'Run records, newest first.',
  query: z.object({ task_id: TaskId, limit: Limit(1000), cursor: CursorQ }),
  data: TaskRunsData,
  errors: [Codes.BAD_JSON, Codes.TASK_NOT_FOUND, Codes.INVALID_OPTION],
});

export const statsOp = operation.read('stats', {
  tag: 'operations',
  summary: 'Counts and rates',
  description: "Tasks by state, runs by status, and this node's fire/success/failure counts, rates and percentiles (`live`; null without a scheduler).",
  data: StatsData,
});

export function manageRoutes(app: Hono, deps: ApiDeps & { service: TaskService }): void {
  const { service } = deps;

  app.post(updateTaskOp.path, async (c) => {
    const { body, id } = await bodyWithTaskId(c);
    const t = await service.update(id, body, exactBodyText(requestText(c)), pauseByOf(c));
    return reply(c, updateTaskOp, { task_id: t.id, state: t.state, next_fire_time: t.state === 'completed' ? null : t.next_fire_time });
  });

  app.post(pauseTaskOp.path, async (c) => {
    const body = await objectBody(c, ['task_id', 'note']);
    const t = await service.pause(taskIdOf(body.task_id), pauseByOf(c, body.note));
    return reply(c, pauseTaskOp, { task_id: t.id, state: t.state });
  });

  app.post(resumeTaskOp.path, async (c) => {
    const { id } = await bodyWithTaskId(c);
    const t = await service.resume(id);
    return reply(c, resumeTaskOp, { task_id: t.id, state: t.state, next_fire_time: t.state === 'completed' ? null : t.next_fire_time });
  });

  app.post(triggerTaskOp.path, async (c) => {
    const { body, id } = await bodyWithTaskId(c);
    for (const k of Object.keys(body)) {
      if (!TRIGGER_FIELDS.includes(k)) throw new XcronError(Codes.BAD_JSON, 400, `unknown field '${k}' (known fields: ${TRIGGER_FIELDS.join(', ')})`);
    }
    const request = parseRunRequest(body.body, body.headers, deps.limits, exactBodyText(requestText(c), ['body']));
    const run = await service.trigger(id, request);
    if (!run) throw taskNotFound(id);
    return reply(c, triggerTaskOp, { task_id: id, run_id: run.run_id, scheduled_time: run.scheduled_time });
  });

  app.get(listTasksOp.path, async (c) => {
    const stateQ = c.req.query('state');
    let state: Task['state'] | null = null;
    if (stateQ !== undefined && stateQ !== '') {
      if (!(STATES as readonly string[]).includes(stateQ)) throw new XcronError(Codes.INVALID_OPTION, 400, `invalid 'state': must be one of ${STATES.join(', ')}, got ${JSON.stringify(stateQ.slice(0, 40))}`);
      state = stateQ as Task['state'];
    }
    const name = c.req.query('name') ?? c.req.query('name_prefix');
    const limit = parseLimit(c.req.query('limit'), 50, 1000);
    const after = decodeCursor(c.req.query('cursor'));
    const lastQ = c.req.query('last_status');
    if (lastQ !== undefined && lastQ !== '' && !(LAST_STATUSES as readonly string[]).includes(lastQ)) {
      throw new XcronError(Codes.INVALID_OPTION, 400, `invalid 'last_status': must be one of ${LAST_STATUSES.join(', ')}, got ${JSON.stringify(lastQ.slice(0, 40))}`);
    }
    const tagQ = c.req.query('tag');
    if (tagQ !== undefined && tagQ !== '') {
      const why = tagProblem(tagQ);
      if (why !== null) throw new XcronError(Codes.INVALID_OPTION, 400, `invalid 'tag': ${why}`);
    }
    const rows = await deps.store.listTasks({ state, namePrefix: name ? name : null, after, limit: limit + 1, tag: tagQ || null, lastStatus: lastQ || null });
    const page = rows.slice(0, limit);
    const more = rows.length > limit;
    // A held fire shows as not made yet; a task that then no longer matches the state asked for is
    // left out of this page (the cursor still moves past it).
    const shown = deps.viewTask ? page.map(deps.viewTask).filter((t) => state === null || t.state === state) : page;
    // A body kept as its exact text (big integers) is spliced into the answer as that text.
    return reply(c, listTasksOp, { tasks: shown.map(taskView), next_cursor: more ? encodeCursor(page[page.length - 1]!.id) : null }, 'ok', shown.some((t) => t.callback.body_text !== undefined));
  });

  app.get(taskRunsOp.path, async (c) => {
    const id = taskIdOf(c.req.query('task_id'));
    const limit = parseLimit(c.req.query('limit'), 50, 1000);
    const raw = decodeCursor(c.req.query('cursor'));
    let before: DueKey | null = null;
    if (raw !== null) {
      const m = /^(\d+):(.+)$/.exec(raw);
      if (!m) throw new XcronError(Codes.INVALID_OPTION, 400, "invalid 'cursor': not a cursor returned by this API");
      before = { time: Number(m[1]), id: m[2]! };
    }
    if (!(await deps.store.get(id))) throw taskNotFound(id);
    const rows = await deps.store.pageRuns({ task_id: id, before, limit: limit + 1 });
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return reply(c, taskRunsOp, { runs: page.map(runView), next_cursor: rows.length > limit && last ? encodeCursor(`${last.scheduled_time}:${last.run_id}`) : null });
  });

  app.get(statsOp.path, async (c) => {
    const s = await deps.store.stats();
    return reply(c, statsOp, { node: deps.nodeId, tasks: s.tasks, runs: s.runs, live: deps.liveStats ? deps.liveStats() : null });
  });
}
