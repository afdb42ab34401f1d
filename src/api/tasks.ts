/** Task endpoints: createTask, deleteTask, queryTask (xcron-compatible). Rules live in the service. */
import type { Hono } from 'hono';
import { Codes, XcronError, describe } from '../errors.js';
import { taskNotFound, type TaskService } from '../service/index.js';
import { exactBodyText, isObject } from '../task/index.js';
import type { ApiDeps } from './deps.js';
import { ok } from './envelope.js';
import { readJson, requestText, taskIdOf } from './request.js';
import { TASK_STATS_RUNS, taskRunStats, taskView } from './views.js';

export function taskRoutes(app: Hono, deps: ApiDeps & { service: TaskService }): void {
  const { service } = deps;

  app.post('/xcron/createTask', async (c) => {
    const res = await service.create(await readJson(c), exactBodyText(requestText(c)));
    return ok(c, { task_id: res.task.id, next_fire_time: res.task.state === 'completed' ? null : res.task.next_fire_time }, res.created ? 'ok' : 'ok (existing task for this idempotency_key)');
  });

  app.post('/xcron/deleteTask', async (c) => {
    const body = await readJson(c);
    if (!isObject(body)) throw new XcronError(Codes.BAD_JSON, 400, `request body must be a JSON object {"task_id": "..."}, got ${describe(body)}`);
    const id = taskIdOf(body.task_id);
    if (!(await service.delete(id))) throw taskNotFound(id);
    return ok(c, null);
  });

  app.get('/xcron/queryTask', async (c) => {
    const id = taskIdOf(c.req.query('task_id'));
    const stored = await deps.store.get(id);
    if (!stored) throw taskNotFound(id);
    const t = deps.viewTask ? deps.viewTask(stored) : stored;
    const recent = await deps.store.pageRuns({ task_id: id, before: null, limit: TASK_STATS_RUNS });
    return ok(c, { ...taskView(t), stats: taskRunStats(recent) }, 'ok', t.callback.body_text !== undefined);
  });
}
