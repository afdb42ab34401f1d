/** Task endpoints: createTask, deleteTask, queryTask (xcron-compatible). Rules live in the service. */
import type { Hono } from 'hono';
import { z } from 'zod';
import { Codes, XcronError, describe } from '../errors.js';
import { taskNotFound, type TaskService } from '../service/index.js';
import { CreateTaskInput, exactBodyText, isObject } from '../task/index.js';
import { defineOperation, reply } from './contract/registry.js';
import { CreateTaskData, TaskDetail, TaskId, TaskIdInput } from './contract/schemas.js';
import type { ApiDeps } from './deps.js';
import { readJson, requestText, taskIdOf } from './request.js';
import { TASK_STATS_RUNS, taskRunStats, taskView } from './views.js';

/** Codes a task's fields can be refused with (create and update). */
export const TASK_FIELD_ERRORS = [
  Codes.ONESHOT_FORMAT, Codes.ONESHOT_TIME, Codes.CALLBACK_URL, Codes.CRON_INVALID, Codes.TIMEZONE, Codes.INVALID_OPTION, Codes.SSRF_REFUSED, Codes.UNSUPPORTED_TYPE, Codes.UNKNOWN_TARGET, Codes.EXECUTOR_GROUP,
] as const;

export const createTaskOp = defineOperation({
  method: 'post',
  path: '/xcron/createTask',
  operationId: 'createTask',
  tag: 'tasks',
  summary: 'Create a task',
  description: 'Creates a periodic (cron) or one-shot task. With an `idempotency_key` already in use, answers the existing task ("ok (existing task for this idempotency_key)").',
  access: 'admin',
  body: CreateTaskInput,
  data: CreateTaskData,
  errors: TASK_FIELD_ERRORS,
  store: 'write',
});


export const deleteTaskOp = defineOperation({
  method: 'post',
  path: '/xcron/deleteTask',
  operationId: 'deleteTask',
  tag: 'tasks',
  summary: 'Delete a task',
  description: 'The task never fires again (a delivery already in flight may finish); its run history is deleted with it.',
  access: 'admin',
  body: TaskIdInput,
  data: z.null(),
  errors: [Codes.TASK_NOT_FOUND],
  store: 'write',
});

export const queryTaskOp = defineOperation({
  method: 'get',
  path: '/xcron/queryTask',
  operationId: 'queryTask',
  tag: 'tasks',
  summary: 'Get a task',
  description: 'The task, with figures over its newest 200 retained runs.',
  access: 'read',
  query: z.object({ task_id: TaskId }),
  data: TaskDetail,
  errors: [Codes.BAD_JSON, Codes.TASK_NOT_FOUND],
  store: 'read',
});

export function taskRoutes(app: Hono, deps: ApiDeps & { service: TaskService }): void {
  const { service } = deps;

  app.post(createTaskOp.path, async (c) => {
    const res = await service.create(await readJson(c), exactBodyText(requestText(c)));
    return reply(c, createTaskOp, { task_id: res.task.id, next_fire_time: res.task.state === 'completed' ? null : res.task.next_fire_time }, res.created ? 'ok' : 'ok (existing task for this idempotency_key)');
  });

  app.post(deleteTaskOp.path, async (c) => {
    const body = await readJson(c);
    if (!isObject(body)) throw new XcronError(Codes.BAD_JSON, 400, `request body must be a JSON object {"task_id": "..."}, got ${describe(body)}`);
    const id = taskIdOf(body.task_id);
    if (!(await service.delete(id))) throw taskNotFound(id);
    return reply(c, deleteTaskOp, null);
  });

  app.get(queryTaskOp.path, async (c) => {
    const id = taskIdOf(c.req.query('task_id'));
    const stored = await deps.store.get(id);
    if (!stored) throw taskNotFound(id);
    const t = deps.viewTask ? deps.viewTask(stored) : stored;
    const recent = await deps.store.pageRuns({ task_id: id, before: null, limit: TASK_STATS_RUNS });
    return reply(c, queryTaskOp, { ...taskView(t), stats: taskRunStats(recent) }, 'ok', t.callback.body_text !== undefined);
  });
}
