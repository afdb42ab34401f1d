/**
 * Management extensions: updateTask, pauseTask, resumeTask, triggerTask, listTasks, taskRuns, stats.
 * Business rules (validation, next fire) come from the task module; the store guards every change
 * with an optimistic check so a fire committed in between is never overwritten.
 */
import type { Context, Hono } from 'hono';
import { Codes, XcronError, describe } from '../errors.js';
import type { DueKey, TaskChanges } from '../store/types.js';
import { ONE_SHOT, fireId, firstFire, isObject, manualFireTime, nextFire, validateUpdate, type Run, type Task } from '../task/index.js';
import type { ApiDeps } from './app.js';
import { ok } from './envelope.js';
import { readJson, taskIdOf, taskView } from './tasks.js';

const STATES = ['active', 'paused', 'completed'] as const;

/** A FIFO mutex (one holder at a time). */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  acquire(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => (release = r));
    const ready = this.tail.then(() => release);
    this.tail = this.tail.then(() => next);
    return ready;
  }
}

const MAX_UPDATE_RETRIES = 5;

/** The next fire of an existing task from `now` (anchors of @every stay on the creation time). */
function rescheduleFrom(t: Task, now: number, graceMs: number): number {
  if (t.type === ONE_SHOT) return firstFire(t, now, graceMs);
  firstFire(t, now, graceMs); // validates the expression and the window, with precise errors
  const next = nextFire(t, now);
  if (next === null) throw new XcronError(Codes.INVALID_OPTION, 400, "invalid 'end_time': the schedule has no fire time left in its window");
  return next;
}

export function runView(r: Run): Record<string, unknown> {
  return {
    run_id: r.run_id,
    task_id: r.task_id,
    node: r.node,
    scheduled_time: r.scheduled_time,
    start_time: r.start_time,
    end_time: r.end_time,
    attempts: r.attempts,
    status: r.status,
    http_status: r.http_status,
    error: r.error,
    duration_ms: r.duration_ms,
    response_body: r.response_body,
    ...(r.shards ? { shards: r.shards } : {}),
    ...(r.deadline !== null ? { deadline: r.deadline } : {}),
    ...(r.message !== null ? { message: r.message } : {}),
    ...(r.output !== null ? { output: JSON.parse(r.output) as unknown } : {}),
  };
}

const encodeCursor = (s: string): string => Buffer.from(s, 'utf8').toString('base64url');
function decodeCursor(v: string | undefined, field = 'cursor'): string | null {
  if (v === undefined || v === '') return null;
  if (!/^[A-Za-z0-9_-]{1,400}$/.test(v)) throw new XcronError(Codes.INVALID_OPTION, 400, `invalid '${field}': not a cursor returned by this API`);
  return Buffer.from(v, 'base64url').toString('utf8');
}

function parseLimit(v: string | undefined, dflt: number, max: number): number {
  if (v === undefined || v === '') return dflt;
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > max) {
    throw new XcronError(Codes.INVALID_OPTION, 400, `invalid 'limit': must be an integer from 1 to ${max}, got ${JSON.stringify(v.slice(0, 20))}`);
  }
  return Number(v);
}

async function bodyWithTaskId(c: Context): Promise<{ body: Record<string, unknown>; id: string }> {
  const body = await readJson(c);
  if (!isObject(body)) throw new XcronError(Codes.BAD_JSON, 400, `request body must be a JSON object with 'task_id', got ${describe(body)}`);
  return { body, id: taskIdOf(body.task_id) };
}

export function manageRoutes(app: Hono, deps: ApiDeps): void {
  const childGraphLock = new Mutex();
  const notFound = (id: string): XcronError => new XcronError(Codes.TASK_NOT_FOUND, 404, `task ${JSON.stringify(id)} not found`);

  /** Read, compute the change, write if unchanged in between; retry on a concurrent fire. */
  async function change(id: string, compute: (t: Task, now: number) => TaskChanges | null): Promise<Task> {
    for (let i = 0; i < MAX_UPDATE_RETRIES; i++) {
      // Each try first undoes a fire committed ahead of its due time (it may be committed again
      // between a conflict and the retry).
      await deps.notifier.beforeChange?.(id);
      const cur = await deps.store.get(id);
      if (!cur) throw notFound(id);
      const now = deps.clock.now();
      const ch = compute(cur, now);
      if (ch === null) return cur; // nothing to do
      const res = await deps.store.updateTask(id, ch, { state: cur.state, next_fire_time: cur.next_fire_time });
      if (res === null) throw notFound(id);
      if (res !== 'conflict') {
        deps.notifier.taskChanged(res);
        return res;
      }
    }
    throw new XcronError(Codes.STORE_WRITE, 503, `task ${JSON.stringify(id)} kept changing during the update (it is firing); retry`);
  }

  app.post('/xcron/updateTask', async (c) => {
    const { body, id } = await bodyWithTaskId(c);
    // Child-graph changes are serialised, so two concurrent updates cannot close a cycle between
    // them (each check sees the other's committed write). Within one process; see README.
    const release = Array.isArray(body.on_success) ? await childGraphLock.acquire() : null;
    try {
      if (Array.isArray(body.on_success)) await checkChildren(deps, id, body.on_success as string[]);
      return await doUpdate(c, body, id);
    } finally {
      release?.();
    }
  });

  const doUpdate = async (c: Context, body: Record<string, unknown>, id: string): Promise<Response> => {
    const t = await change(id, (cur, now) => {
      const req = validateUpdate(body, cur, deps.limits);
      let state = cur.state;
      if (req.paused === true && state === 'active') state = 'paused';
      if (req.paused === false && state === 'paused') state = 'active';
      let next = cur.next_fire_time;
      if (req.rescheduled || (state === 'active' && cur.state !== 'active')) {
        next = rescheduleFrom({ ...cur, ...req.spec }, now, deps.limits.pastGraceMs);
      }
      // A finished one-shot given a new time becomes active again.
      if (cur.state === 'completed' && req.rescheduled) state = req.paused === true ? 'paused' : 'active';
      return { ...req.spec, state, next_fire_time: next, update_time: now };
    });
    return ok(c, { task_id: t.id, state: t.state, next_fire_time: t.state === 'completed' ? null : t.next_fire_time });
  };

  app.post('/xcron/pauseTask', async (c) => {
    const { id } = await bodyWithTaskId(c);
    const t = await change(id, (cur, now) => (cur.state === 'active' ? { state: 'paused', update_time: now } : null));
    return ok(c, { task_id: t.id, state: t.state });
  });

  app.post('/xcron/resumeTask', async (c) => {
    const { id } = await bodyWithTaskId(c);
    const t = await change(id, (cur, now) => {
      if (cur.state !== 'paused') return null;
      // Periodic: the schedule continues from now (ticks while paused are not fired).
      // One-shot: keeps its time; if that passed while paused it fires at once.
      if (cur.type === ONE_SHOT) return { state: 'active', next_fire_time: cur.next_fire_time, update_time: now };
      const next = nextFire(cur, now);
      // The window (end_time) ended while paused: nothing is left to fire.
      if (next === null) return { state: 'completed', next_fire_time: null, update_time: now };
      return { state: 'active', next_fire_time: next, update_time: now };
    });
    return ok(c, { task_id: t.id, state: t.state, next_fire_time: t.state === 'completed' ? null : t.next_fire_time });
  });

  app.post('/xcron/triggerTask', async (c) => {
    const { id } = await bodyWithTaskId(c);
    const task = await deps.store.get(id);
    if (!task) throw notFound(id);
    const now = deps.clock.now();
    let at = now;
    for (let i = 0; i < 10; i++) {
      at = manualFireTime(task, at);
      const run_id = fireId(id, at);
      const res = await deps.store.commitTrigger({ slot: task.slot, task_id: id, run_id, scheduled_time: at, node: deps.nodeId, now });
      if (res === 'committed') {
        deps.notifier.runQueued(run_id, task.slot);
        return ok(c, { task_id: id, run_id, scheduled_time: at });
      }
      if (!(await deps.store.get(id))) throw notFound(id);
      at++;
    }
    throw new XcronError(Codes.STORE_WRITE, 503, 'could not allocate a fire id for the manual run; retry');
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
    const rows = await deps.store.listTasks({ state, namePrefix: name ? name : null, after, limit: limit + 1 });
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
    if (!(await deps.store.get(id))) throw notFound(id);
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

/**
 * Child tasks must exist, and following on_success from them must never lead back to `selfId`
 * (a cycle would trigger forever).
 */
export async function checkChildren(deps: ApiDeps, selfId: string | null, children: readonly unknown[]): Promise<void> {
  const seen = new Set<string>();
  const stack: { id: string; path: string[] }[] = [];
  for (const c of children) {
    if (typeof c !== 'string') continue; // the validator reports the type
    if (c === selfId) throw new XcronError(Codes.INVALID_OPTION, 400, `invalid 'on_success': a task cannot be its own child (${c})`);
    const t = await deps.store.get(c);
    if (!t) throw new XcronError(Codes.INVALID_OPTION, 400, `invalid 'on_success': child task ${JSON.stringify(c)} not found`);
    stack.push({ id: c, path: [c] });
  }
  if (selfId === null) return; // a new task: nothing can point at it yet
  let visited = 0;
  while (stack.length > 0) {
    const { id, path } = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    if (++visited > 10_000) throw new XcronError(Codes.INVALID_OPTION, 400, "invalid 'on_success': the child chain is too large to check");
    const t = await deps.store.get(id);
    for (const next of t?.on_success ?? []) {
      if (next === selfId) {
        throw new XcronError(Codes.INVALID_OPTION, 400, `invalid 'on_success': it would form a cycle ${[selfId, ...path, selfId].join(' -> ')}`);
      }
      stack.push({ id: next, path: [...path, next] });
    }
  }
}
