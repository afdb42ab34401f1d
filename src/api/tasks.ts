/** Task endpoints: createTask, deleteTask, queryTask (xcron-compatible). */
import type { Context, Hono } from 'hono';
import { nanoid } from 'nanoid';
import { slotOf } from '../cluster/index.js';
import { Codes, XcronError, describe } from '../errors.js';
import { depthWithin, isObject, validateCreate, type Run, type Task } from '../task/index.js';
import type { ApiDeps } from './app.js';
import { ok } from './envelope.js';
import { checkChildren } from './manage.js';

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;
const MAX_JSON_DEPTH = 64;
const TASK_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** Reads a JSON body: content type must be JSON (or absent); the text must parse. */
export function readJson(c: Context): Promise<unknown> {
  // Parsed once per request (the SSRF check and the route share it); errors are re-thrown to each.
  const cached = c.get('jsonBody' as never) as Promise<unknown> | undefined;
  if (cached) return cached;
  const p = parseJsonBody(c);
  p.catch(() => undefined); // a caller that only peeks must not leave an unhandled rejection
  c.set('jsonBody' as never, p as never);
  return p;
}

async function parseJsonBody(c: Context): Promise<unknown> {
  const ct = c.req.header('content-type');
  if (ct !== undefined && ct !== '' && !JSON_TYPE.test(ct)) {
    throw new XcronError(Codes.BAD_JSON, 415, `request body must be JSON (Content-Type: application/json), got Content-Type ${JSON.stringify(ct.slice(0, 60))}`);
  }
  const text = await c.req.text();
  if (text.trim() === '') throw new XcronError(Codes.BAD_JSON, 400, 'request body is empty; expected a JSON object');
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (e) {
    throw new XcronError(Codes.BAD_JSON, 400, `request body is not valid JSON: ${(e as Error).message}`);
  }
  if (!depthWithin(value, MAX_JSON_DEPTH)) {
    throw new XcronError(Codes.BAD_JSON, 400, `request body nests objects/arrays deeper than ${MAX_JSON_DEPTH} levels`);
  }
  return value;
}

/** Reads and checks a task_id value. */
export function taskIdOf(v: unknown, where = 'task_id'): string {
  if (v === undefined || v === null || v === '') throw new XcronError(Codes.BAD_JSON, 400, `'${where}' is required`);
  if (typeof v !== 'string') throw new XcronError(Codes.BAD_JSON, 400, `'${where}' must be a string, got ${describe(v)}`);
  if (!TASK_ID_RE.test(v)) throw new XcronError(Codes.TASK_NOT_FOUND, 404, `task ${JSON.stringify(v.slice(0, 80))} not found`);
  return v;
}

const TASK_STATS_RUNS = 200;

function pct(sorted: number[], p: number): number | null {
  return sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/** Per-task figures over its newest retained runs (at most 200): queryTask's `stats`. */
export function taskRunStats(runs: readonly Run[]): Record<string, unknown> {
  let successes = 0;
  let failures = 0;
  let skipped = 0;
  let missed = 0;
  const lateness: number[] = [];
  const duration: number[] = [];
  for (const r of runs) {
    if (r.status === 'SUCCESS') successes++;
    else if (r.status === 'FAIL') failures++;
    else if (r.status === 'SKIPPED') skipped++;
    else if (r.status === 'MISSED') missed++;
    if (r.start_time !== null && (r.status === 'SUCCESS' || r.status === 'FAIL')) lateness.push(Math.max(0, r.start_time - r.scheduled_time));
    if (r.duration_ms !== null) duration.push(r.duration_ms);
  }
  lateness.sort((a, b) => a - b);
  duration.sort((a, b) => a - b);
  const done = successes + failures;
  return {
    window_runs: runs.length,
    fires: runs.length - skipped - missed,
    successes,
    failures,
    skipped,
    missed,
    success_rate: done === 0 ? null : successes / done,
    lateness_ms: { p50: pct(lateness, 0.5), p99: pct(lateness, 0.99) },
    duration_ms: { p50: pct(duration, 0.5), p99: pct(duration, 0.99) },
  };
}

/** The public view of a task (queryTask's data). */
export function taskView(t: Task): Record<string, unknown> {
  const callback: Record<string, unknown> = { url: t.callback.url, body: t.callback.body };
  if (t.callback.method !== 'POST') callback.method = t.callback.method;
  if (t.callback.headers) callback.headers = t.callback.headers;
  if (t.callback.urls) {
    callback.urls = t.callback.urls;
    callback.route = t.callback.route;
  }
  const v: Record<string, unknown> = {
    task_id: t.id,
    create_time: String(Math.floor(t.create_time / 1000)),
    type: t.type,
    format: t.format,
    run_count: t.run_count,
    callback,
    state: t.state,
    next_fire_time: t.state === 'completed' ? null : t.next_fire_time,
    last_fire_time: t.last_fire_time,
    last_status: t.last_status,
    timezone: t.timezone,
    misfire: t.misfire,
    overlap: t.overlap,
  };
  if (t.name !== null) v.name = t.name;
  if (t.timeout_ms !== null) v.timeout_ms = t.timeout_ms;
  if (t.retry !== null) v.retry = t.retry;
  if (t.idempotency_key !== null) v.idempotency_key = t.idempotency_key;
  if (t.start_time !== null) v.start_time = t.start_time;
  if (t.end_time !== null) v.end_time = t.end_time;
  if (t.on_success !== null) v.on_success = t.on_success;
  if (t.alert_url !== null) v.alert_url = t.alert_url;
  if (t.max_consecutive_failures !== null) v.max_consecutive_failures = t.max_consecutive_failures;
  if (t.completion !== 'sync') v.completion = t.completion;
  if (t.async_timeout_ms !== null) v.async_timeout_ms = t.async_timeout_ms;
  return v;
}

export function taskRoutes(app: Hono, deps: ApiDeps): void {
  const newId = deps.newId ?? (() => nanoid());

  app.post('/xcron/createTask', async (c) => {
    const body = await readJson(c);
    const now = deps.clock.now();
    const req = validateCreate(body, now, deps.limits);
    if (req.spec.on_success) await checkChildren(deps, null, req.spec.on_success);
    const id = newId();
    const task: Task = {
      ...req.spec,
      id,
      slot: slotOf(id, deps.slots),
      state: req.paused ? 'paused' : 'active',
      create_time: now,
      update_time: now,
      next_fire_time: req.next_fire_time,
      last_fire_time: null,
      last_status: null,
      run_count: 0,
    };
    const res = await deps.store.create(task);
    if (res.created) deps.notifier.taskChanged(res.task);
    return ok(c, { task_id: res.task.id, next_fire_time: res.task.state === 'completed' ? null : res.task.next_fire_time }, res.created ? 'ok' : 'ok (existing task for this idempotency_key)');
  });

  app.post('/xcron/deleteTask', async (c) => {
    const body = await readJson(c);
    if (!isObject(body)) throw new XcronError(Codes.BAD_JSON, 400, `request body must be a JSON object {"task_id": "..."}, got ${describe(body)}`);
    const id = taskIdOf(body.task_id);
    await deps.notifier.beforeChange?.(id);
    const deleted = await deps.store.delete(id);
    if (!deleted) throw new XcronError(Codes.TASK_NOT_FOUND, 404, `task ${JSON.stringify(id)} not found`);
    deps.notifier.taskRemoved(id, deleted.slot);
    return ok(c, null);
  });

  app.get('/xcron/queryTask', async (c) => {
    const id = taskIdOf(c.req.query('task_id'));
    const stored = await deps.store.get(id);
    if (!stored) throw new XcronError(Codes.TASK_NOT_FOUND, 404, `task ${JSON.stringify(id)} not found`);
    const t = deps.viewTask ? deps.viewTask(stored) : stored;
    const recent = await deps.store.pageRuns({ task_id: id, before: null, limit: TASK_STATS_RUNS });
    return ok(c, { ...taskView(t), stats: taskRunStats(recent) });
  });
}
