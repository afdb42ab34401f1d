/**
 * Management extensions: updateTask, pauseTask, resumeTask, triggerTask, listTasks, taskRuns,
 * stats. Routes parse the request, call one service operation and map its result; the rules
 * (validation, next fire, the optimistic retry, the child graph, fire ids) live in the service.
 */
import type { Hono } from 'hono';
import { Codes, XcronError } from '../errors.js';
import { taskNotFound, type TaskService } from '../service/index.js';
import type { DueKey } from '../store/types.js';
import { exactBodyText, parseRunRequest, tagProblem, type Task } from '../task/index.js';
import type { ApiDeps } from './deps.js';
import { ok } from './envelope.js';
import { bodyWithTaskId, decodeCursor, encodeCursor, parseLimit, requestText, taskIdOf } from './request.js';
import { runView, taskView } from './views.js';

const STATES = ['active', 'paused', 'completed'] as const;
const TRIGGER_FIELDS = ['task_id', 'body', 'headers'];
const LAST_STATUSES = ['SUCCESS', 'FAIL', 'SKIPPED', 'MISSED'];

export function manageRoutes(app: Hono, deps: ApiDeps & { service: TaskService }): void {
  const { service } = deps;

  app.post('/xcron/updateTask', async (c) => {
    const { body, id } = await bodyWithTaskId(c);
    const t = await service.update(id, body, exactBodyText(requestText(c)));
    return ok(c, { task_id: t.id, state: t.state, next_fire_time: t.state === 'completed' ? null : t.next_fire_time });
  });

  app.post('/xcron/pauseTask', async (c) => {
    const { id } = await bodyWithTaskId(c);
    const t = await service.pause(id);
    return ok(c, { task_id: t.id, state: t.state });
  });

  app.post('/xcron/resumeTask', async (c) => {
    const { id } = await bodyWithTaskId(c);
    const t = await service.resume(id);
    return ok(c, { task_id: t.id, state: t.state, next_fire_time: t.state === 'completed' ? null : t.next_fire_time });
  });

  app.post('/xcron/triggerTask', async (c) => {
    const { body, id } = await bodyWithTaskId(c);
    for (const k of Object.keys(body)) {
      if (!TRIGGER_FIELDS.includes(k)) throw new XcronError(Codes.BAD_JSON, 400, `unknown field '${k}' (known fields: ${TRIGGER_FIELDS.join(', ')})`);
    }
    const request = parseRunRequest(body.body, body.headers, deps.limits, exactBodyText(requestText(c), ['body']));
    const run = await service.trigger(id, request);
    if (!run) throw taskNotFound(id);
    return ok(c, { task_id: id, run_id: run.run_id, scheduled_time: run.scheduled_time });
  });

  app.get('/xcron/listTasks', async (c) => {
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
    if (lastQ !== undefined && lastQ !== '' && !LAST_STATUSES.includes(lastQ)) {
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
    return ok(c, { tasks: shown.map(taskView), next_cursor: more ? encodeCursor(page[page.length - 1]!.id) : null });
  });

  app.get('/xcron/taskRuns', async (c) => {
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
    return ok(c, { runs: page.map(runView), next_cursor: rows.length > limit && last ? encodeCursor(`${last.scheduled_time}:${last.run_id}`) : null });
  });

  app.get('/xcron/stats', async (c) => {
    const s = await deps.store.stats();
    return ok(c, { node: deps.nodeId, tasks: s.tasks, runs: s.runs, live: deps.liveStats ? deps.liveStats() : null });
  });
}
