/**
 * Issue 4, management endpoints through app.request: the real app over a real SQLite file, a manual
 * clock (so next fire times are exact) and a recording notifier. Behaviour that needs real firing is
 * in the other files of this folder.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.js';
import { ManualClock } from '../../src/clock/index.js';
import { LocalOwnership } from '../../src/cluster/index.js';
import { SqliteTaskStore } from '../../src/store/sqlite.js';
import type { TaskStore } from '../../src/store/types.js';
import { fireId } from '../../src/task/index.js';
import { T0, countRows, createTestApi, send, type AppResponse, type TestApi } from '../helpers/app.js';
import { storedEpoch, type RunView, type TaskData } from './harness.js';

const URL_A = 'http://127.0.0.1:9/hooks/a';
const URL_B = 'http://127.0.0.1:9/hooks/b';
const utc = (y: number, mo: number, d: number, h = 0, mi = 0, s = 0): number => Date.UTC(y, mo - 1, d, h, mi, s);

let api: TestApi;
beforeEach(async () => {
  api = await createTestApi();
});
afterEach(async () => {
  await api.close();
});

async function create(body: Record<string, unknown>): Promise<string> {
  const r = await send<{ task_id: string }>(api.app, '/xcron/createTask', { json: { callback: { url: URL_A }, ...body } });
  expect(r.status, r.text).toBe(200);
  expect(r.body.code, r.text).toBe(0);
  return r.body.data.task_id;
}

async function query(id: string): Promise<TaskData> {
  const r = await send<TaskData>(api.app, `/xcron/queryTask?task_id=${encodeURIComponent(id)}`);
  expect(r.status, r.text).toBe(200);
  expect(r.body.code, r.text).toBe(0);
  return r.body.data;
}

function post<T = unknown>(path: string, json: unknown): Promise<AppResponse<T>> {
  return send<T>(api.app, path, { json });
}

function get<T = unknown>(path: string): Promise<AppResponse<T>> {
  return send<T>(api.app, path);
}

function expectError(r: AppResponse, status: number, code: number, message: RegExp): void {
  expect({ status: r.status, code: r.body.code }, r.text).toEqual({ status, code });
  expect(r.body.message).toMatch(message);
  expect(r.body.data).toBeNull();
}

// ---------------------------------------------------------------------------------------------

describe('updateTask', () => {
  it('changing format recomputes next_fire_time from now and the scheduler is told', async () => {
    const id = await create({ type: 1, format: '*/5 * * * *' });
    expect((await query(id)).next_fire_time).toBe(utc(2030, 1, 1, 0, 5));
    api.clock.jumpTo(utc(2030, 1, 1, 0, 2, 10));
    api.events.length = 0;
    const r = await post<{ task_id: string; state: string; next_fire_time: number }>('/xcron/updateTask', { task_id: id, format: '0 */2 * * *' });
    expect(r.body.code, r.text).toBe(0);
    expect(r.body.data).toEqual({ task_id: id, state: 'active', next_fire_time: utc(2030, 1, 1, 2) });
    const t = await query(id);
    expect(t.format).toBe('0 */2 * * *');
    expect(t.next_fire_time).toBe(utc(2030, 1, 1, 2));
    const changed = api.events.filter((e) => e.kind === 'changed');
    expect(changed).toHaveLength(1);
    expect(changed[0]!.kind === 'changed' && changed[0]!.task.next_fire_time).toBe(utc(2030, 1, 1, 2));
  });

  it('changing timezone recomputes next_fire_time in the new zone', async () => {
    const id = await create({ type: 1, format: '0 9 * * *' });
    expect((await query(id)).next_fire_time).toBe(utc(2030, 1, 1, 9));
    const r = await post<{ next_fire_time: number }>('/xcron/updateTask', { task_id: id, timezone: 'Asia/Shanghai' });
    expect(r.body.code, r.text).toBe(0);
    expect(r.body.data.next_fire_time).toBe(utc(2030, 1, 1, 1)); // 09:00 +08:00
    expect((await query(id)).timezone).toBe('Asia/Shanghai');
  });

  it('changing the callback replaces it whole and keeps the schedule', async () => {
    const id = await create({ type: 1, format: '*/5 * * * *', callback: { url: URL_A, body: { v: 1 }, headers: { 'X-Old': 'o' } } });
    const before = await query(id);
    const r = await post('/xcron/updateTask', { task_id: id, callback: { url: URL_B, body: { v: 2 }, method: 'PUT', headers: { Authorization: 'Bearer t' } } });
    expect(r.body.code, r.text).toBe(0);
    const t = await query(id);
    expect(t.callback).toEqual({ url: URL_B, body: { v: 2 }, method: 'PUT', headers: { Authorization: 'Bearer t' } });
    expect(t.next_fire_time).toBe(before.next_fire_time);
    expect(t.run_count).toBe(0);
  });

  it('changing options (name, timeout_ms, retry, misfire, overlap) keeps the rest', async () => {
    const id = await create({ type: 1, format: '*/5 * * * *', name: 'old' });
    const r = await post('/xcron/updateTask', {
      task_id: id,
      name: 'new-name',
      timeout_ms: 2500,
      retry: { max_attempts: 4, backoff_ms: 100, max_backoff_ms: 800 },
      misfire: 'skip',
      overlap: 'queue',
    });
    expect(r.body.code, r.text).toBe(0);
    const t = await query(id);
    expect(t).toMatchObject({ name: 'new-name', timeout_ms: 2500, retry: { max_attempts: 4, backoff_ms: 100, max_backoff_ms: 800 }, misfire: 'skip', overlap: 'queue', format: '*/5 * * * *' });
    expect(t.callback).toEqual({ url: URL_A, body: {} });
  });

  describe('invalid values are refused with the right code and a precise message, and the task is unchanged', () => {
    const cases: { name: string; patch: Record<string, unknown>; status: number; code: number; message: RegExp }[] = [
      { name: 'cron with 4 fields', patch: { format: '* * * *' }, status: 400, code: 1005, message: /invalid cron expression "\* \* \* \*".*got 4/ },
      { name: 'cron minute 61', patch: { format: '61 * * * *' }, status: 400, code: 1005, message: /invalid cron expression "61 \* \* \* \*"/ },
      { name: 'unknown nickname', patch: { format: '@fortnightly' }, status: 400, code: 1005, message: /unknown nickname "@fortnightly"/ },
      { name: 'callback url not http', patch: { callback: { url: 'ftp://example.com/x' } }, status: 400, code: 1003, message: /'callback\.url' must use http or https, got "ftp"/ },
      { name: 'callback url missing', patch: { callback: { body: {} } }, status: 400, code: 1003, message: /'callback\.url' is required/ },
      { name: 'callback url relative', patch: { callback: { url: '/hook' } }, status: 400, code: 1003, message: /'callback\.url' is not a valid absolute URL/ },
      { name: 'timeout_ms 0', patch: { timeout_ms: 0 }, status: 400, code: 1009, message: /invalid 'timeout_ms': must be an integer from 1 to 300000, got 0/ },
      { name: 'retry.max_attempts 0', patch: { retry: { max_attempts: 0 } }, status: 400, code: 1009, message: /invalid 'retry\.max_attempts': must be an integer from 1 to 100, got 0/ },
      { name: 'misfire unknown', patch: { misfire: 'later' }, status: 400, code: 1009, message: /invalid 'misfire': must be one of "fire_once", "skip", got "later"/ },
      { name: 'overlap unknown', patch: { overlap: 'block' }, status: 400, code: 1009, message: /invalid 'overlap': must be one of "allow", "skip", "queue", got "block"/ },
      { name: 'timezone unknown', patch: { timezone: 'Mars/Phobos' }, status: 400, code: 1006, message: /unknown timezone "Mars\/Phobos"/ },
      { name: 'name empty', patch: { name: '' }, status: 400, code: 1009, message: /invalid 'name': must be 1 to 200 characters, got 0/ },
      { name: 'paused not a boolean', patch: { paused: 'yes' }, status: 400, code: 1000, message: /'paused' must be true or false/ },
      { name: 'end_time before start_time', patch: { start_time: T0 + 7_200_000, end_time: T0 + 3_600_000 }, status: 400, code: 1009, message: /invalid 'end_time': must be after start_time/ },
      { name: 'idempotency_key cannot be set by update', patch: { idempotency_key: 'k' }, status: 400, code: 1000, message: /unknown field 'idempotency_key'/ },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const id = await create({ type: 1, format: '*/5 * * * *', name: 'keep' });
        const before = await query(id);
        const r = await post('/xcron/updateTask', { task_id: id, ...c.patch });
        expectError(r, c.status, c.code, c.message);
        expect(await query(id)).toEqual(before);
      });
    }
  });

  it('unknown task: 1007 / HTTP 404; missing task_id: 1000', async () => {
    expectError(await post('/xcron/updateTask', { task_id: 'nope', name: 'x' }), 404, 1007, /task "nope" not found/);
    expectError(await post('/xcron/updateTask', { name: 'x' }), 400, 1000, /'task_id' is required/);
  });

  it('type cannot change: refused with 1009 naming the field (task unchanged)', async () => {
    const id = await create({ type: 1, format: '*/5 * * * *' });
    const before = await query(id);
    const r = await post('/xcron/updateTask', { task_id: id, type: 2, format: String(T0 / 1000 + 3600) });
    // Refused either way, and the task keeps its type:
    expect(r.status).toBe(400);
    expect(await query(id)).toEqual(before);
    // The contract (manage.ts / validate.ts intent, README "type cannot change"): 1009 with a message
    // that says type cannot be changed. validateUpdate checks unknown fields first, so this answers
    // 1000 "unknown field 'type'" instead (see report).
    expectError(r, 400, 1009, /invalid 'type': cannot be changed/);
  });

  it('a completed one-shot given a new time becomes active again', async () => {
    const at = T0 + 60_000;
    const id = await create({ type: 2, format: String(at) });
    // The scheduler's commit of the one-shot (real store, the epoch the ownership holds).
    const t = (await api.store.get(id))!;
    const res = await api.store.commitFires([
      { slot: t.slot, token: storedEpoch(api.dbFile), task_id: id, expected: at, next: null, now: at, run: { run_id: fireId(id, at), node: 'n', status: 'PENDING', error: null } },
    ]);
    expect(res).toEqual(['committed']);
    api.clock.jumpTo(at + 1000);
    expect((await query(id)).state).toBe('completed');
    const again = at + 3_600_000;
    const r = await post<{ state: string; next_fire_time: number }>('/xcron/updateTask', { task_id: id, format: String(again / 1000) });
    expect(r.body.code, r.text).toBe(0);
    expect(r.body.data).toMatchObject({ state: 'active', next_fire_time: again });
    // A time in the past is refused with 1002.
    expectError(await post('/xcron/updateTask', { task_id: id, format: String(T0 / 1000 - 3600) }), 400, 1002, /in the past/);
  });

  it('an update never rolls back a fire committed between its read and its write (optimistic check)', async () => {
    // A store whose first updateTask lets "the scheduler" commit the due tick first, exactly in the
    // window between the API's read and its write.
    const dir = mkdtempSync(join(tmpdir(), 'xcron-manage-occ-'));
    const real = new SqliteTaskStore({ file: join(dir, 'x.db'), synchronous: 'normal' });
    const epoch = real.claimEpoch();
    const ownership = new LocalOwnership('n', 16, epoch);
    await ownership.start();
    const clock = new ManualClock(T0);
    let interleave: (() => Promise<void>) | null = null;
    let conflicts = 0;
    const store: TaskStore = new Proxy(real, {
      get(target, prop, receiver) {
        if (prop === 'updateTask') {
          return async (...args: Parameters<TaskStore['updateTask']>) => {
            const hook = interleave;
            interleave = null;
            if (hook) await hook();
            const res = await target.updateTask(...args);
            if (res === 'conflict') conflicts++;
            return res;
          };
        }
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const app = createApp({
      store,
      notifier: { taskChanged: () => {}, taskRemoved: () => {}, runQueued: () => {} },
      ownership,
      clock,
      log: pino({ level: 'silent' }),
      slots: 16,
      limits: { requestBodyLimit: 65_536, callbackBodyLimit: 4096, defaultTimezone: 'UTC', pastGraceMs: 1000 },
      version: 't',
      nodeId: 'n',
    });
    try {
      const c = await send<{ task_id: string }>(app, '/xcron/createTask', { json: { type: 1, format: '*/10 * * * * *', callback: { url: URL_A } } });
      const id = c.body.data.task_id;
      const tick = T0 + 10_000;
      const commitTick = async (): Promise<void> => {
        const t = (await real.get(id))!;
        const r = await real.commitFires([
          { slot: t.slot, token: epoch, task_id: id, expected: tick, next: tick + 10_000, now: tick, run: { run_id: fireId(id, tick), node: 'n', status: 'PENDING', error: null } },
        ]);
        expect(r).toEqual(['committed']);
      };

      // 1) A callback-only update racing the commit of tick T0+10s.
      clock.jumpTo(tick);
      interleave = commitTick;
      const u1 = await send<{ next_fire_time: number }>(app, '/xcron/updateTask', { json: { task_id: id, callback: { url: URL_B } } });
      expect(u1.body.code, u1.text).toBe(0);
      expect(conflicts).toBe(1); // the stale write was refused and retried
      let t = (await real.get(id))!;
      expect(t.next_fire_time).toBe(tick + 10_000); // not rolled back to the fired tick
      expect(t.callback.url).toBe(URL_B); // and the update still applied
      expect(t.run_count).toBe(1);

      // 2) A pause racing the commit of the next tick: the tick fired once; the task is paused after it.
      const tick2 = tick + 10_000;
      clock.jumpTo(tick2);
      interleave = async () => {
        const cur = (await real.get(id))!;
        const r = await real.commitFires([
          { slot: cur.slot, token: epoch, task_id: id, expected: tick2, next: tick2 + 10_000, now: tick2, run: { run_id: fireId(id, tick2), node: 'n', status: 'PENDING', error: null } },
        ]);
        expect(r).toEqual(['committed']);
      };
      const p = await send<{ state: string }>(app, '/xcron/pauseTask', { json: { task_id: id } });
      expect(p.body.code, p.text).toBe(0);
      expect(conflicts).toBe(2);
      t = (await real.get(id))!;
      expect(t).toMatchObject({ state: 'paused', next_fire_time: tick2 + 10_000, run_count: 2 });
      const runs = await real.pageRuns({ task_id: id, before: null, limit: 100 });
      expect(runs.map((r) => r.run_id).sort()).toEqual([fireId(id, tick), fireId(id, tick2)].sort());
    } finally {
      await ownership.stop();
      await real.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('pauseTask / resumeTask', () => {
  it('pause sets state paused (idempotent); resume recomputes next_fire_time from now', async () => {
    const id = await create({ type: 1, format: '*/10 * * * * *' });
    expect((await query(id)).next_fire_time).toBe(T0 + 10_000);
    api.events.length = 0;
    const p = await post<{ task_id: string; state: string }>('/xcron/pauseTask', { task_id: id });
    expect(p.body.code, p.text).toBe(0);
    expect(p.body.data).toEqual({ task_id: id, state: 'paused' });
    expect(api.events.some((e) => e.kind === 'changed' && e.task.id === id && e.task.state === 'paused')).toBe(true);
    expect((await query(id)).state).toBe('paused');
    const again = await post<{ state: string }>('/xcron/pauseTask', { task_id: id });
    expect(again.body.code, again.text).toBe(0);
    expect(again.body.data.state).toBe('paused');

    api.clock.jumpTo(utc(2030, 1, 1, 0, 1, 35)); // ticks at :40 … 01:30 passed while paused
    const r = await post<{ task_id: string; state: string; next_fire_time: number }>('/xcron/resumeTask', { task_id: id });
    expect(r.body.code, r.text).toBe(0);
    expect(r.body.data).toEqual({ task_id: id, state: 'active', next_fire_time: utc(2030, 1, 1, 0, 1, 40) });
    expect(await query(id)).toMatchObject({ state: 'active', next_fire_time: utc(2030, 1, 1, 0, 1, 40), run_count: 0 });
  });

  it('resume of a one-shot keeps its time, even when it passed while paused', async () => {
    const at = T0 + 60_000;
    const id = await create({ type: 2, format: String(at / 1000) });
    await post('/xcron/pauseTask', { task_id: id });
    api.clock.jumpTo(at + 120_000);
    const r = await post<{ state: string; next_fire_time: number }>('/xcron/resumeTask', { task_id: id });
    expect(r.body.code, r.text).toBe(0);
    expect(r.body.data).toMatchObject({ state: 'active', next_fire_time: at });
  });

  it('resume of a periodic task whose end_time passed while paused completes it (no error about a field the request did not send)', async () => {
    const id = await create({ type: 1, format: '*/10 * * * * *', end_time: T0 + 60_000 });
    await post('/xcron/pauseTask', { task_id: id });
    api.clock.jumpTo(T0 + 120_000); // the window is over
    const r = await post<{ state: string; next_fire_time: number | null }>('/xcron/resumeTask', { task_id: id });
    // The code answers 400/1009 "invalid 'end_time': the schedule has no fire time before end_time"
    // and the task stays paused for ever (README: "after end_time the task is completed").
    expect({ status: r.status, code: r.body.code }, r.text).toEqual({ status: 200, code: 0 });
    expect(r.body.data).toMatchObject({ state: 'completed', next_fire_time: null });
  });

  it('paused:true at create: state paused with a next_fire_time; resume activates it', async () => {
    const id = await create({ type: 1, format: '*/5 * * * *', paused: true });
    expect(await query(id)).toMatchObject({ state: 'paused', next_fire_time: utc(2030, 1, 1, 0, 5) });
    const stats = await get<{ tasks: Record<string, number> }>('/xcron/stats');
    expect(stats.body.data.tasks).toEqual({ active: 0, paused: 1, completed: 0 });
    const r = await post<{ state: string }>('/xcron/resumeTask', { task_id: id });
    expect(r.body.data.state).toBe('active');
  });

  it('updateTask paused:true / paused:false pauses and resumes', async () => {
    const id = await create({ type: 1, format: '*/5 * * * *' });
    const a = await post<{ state: string }>('/xcron/updateTask', { task_id: id, paused: true });
    expect(a.body.data.state).toBe('paused');
    api.clock.jumpTo(utc(2030, 1, 1, 0, 7));
    const b = await post<{ state: string; next_fire_time: number }>('/xcron/updateTask', { task_id: id, paused: false });
    expect(b.body.data).toMatchObject({ state: 'active', next_fire_time: utc(2030, 1, 1, 0, 10) });
  });

  it('unknown task: 1007 / 404 for pause, resume and trigger', async () => {
    for (const path of ['/xcron/pauseTask', '/xcron/resumeTask', '/xcron/triggerTask']) {
      expectError(await post(path, { task_id: 'missing_task' }), 404, 1007, /task "missing_task" not found/);
      expectError(await post(path, {}), 400, 1000, /'task_id' is required/);
      expectError(await post(path, { task_id: 7 }), 400, 1000, /'task_id' must be a string, got the number 7/);
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('triggerTask', () => {
  it('records a run now with its own fire id <task_id>:<ms>, counts in run_count, appears in taskRuns, queued for delivery', async () => {
    const id = await create({ type: 1, format: '0 0 1 1 *' });
    api.clock.jumpTo(T0 + 1234);
    api.events.length = 0;
    const r = await post<{ task_id: string; run_id: string; scheduled_time: number }>('/xcron/triggerTask', { task_id: id });
    expect(r.body.code, r.text).toBe(0);
    expect(r.body.data).toEqual({ task_id: id, run_id: `${id}:${T0 + 1234}`, scheduled_time: T0 + 1234 });
    expect(api.events).toEqual([expect.objectContaining({ kind: 'runQueued', runId: `${id}:${T0 + 1234}` })]);
    const t = await query(id);
    expect(t.run_count).toBe(1);
    expect(t.last_fire_time).toBe(T0 + 1234);
    expect(t.next_fire_time).toBe(utc(2031, 1, 1)); // schedule untouched
    // A second trigger in the same millisecond gets a different fire id.
    const r2 = await post<{ run_id: string }>('/xcron/triggerTask', { task_id: id });
    expect(r2.body.data.run_id).toBe(`${id}:${T0 + 1235}`);
    const runs = await get<{ runs: RunView[] }>(`/xcron/taskRuns?task_id=${id}`);
    expect(runs.body.data.runs.map((x) => [x.run_id, x.status, x.node])).toEqual([
      [`${id}:${T0 + 1235}`, 'PENDING', 'api-test'],
      [`${id}:${T0 + 1234}`, 'PENDING', 'api-test'],
    ]);
    expect((await query(id)).run_count).toBe(2);
  });

  it('a trigger of a paused task is accepted (and delivered, see firing tests); the task stays paused', async () => {
    const id = await create({ type: 1, format: '*/5 * * * *', paused: true });
    const r = await post<{ run_id: string }>('/xcron/triggerTask', { task_id: id });
    expect(r.body.code, r.text).toBe(0);
    expect(await query(id)).toMatchObject({ state: 'paused', run_count: 1 });
  });

  it('a trigger at the exact millisecond of a due, not yet committed tick does not swallow that tick', async () => {
    // Fire ids are <task_id>:<ms>. When triggerTask runs at the very millisecond of the task's due
    // tick (the scheduler commits it a moment later), the manual run must not take the tick's fire
    // id: the tick's run record would be dropped (INSERT OR IGNORE) while commitFires still says
    // 'committed', and the tick would be delivered under the manual run's id. (Fixed in dda93e3 by
    // manualFireTime; this is the regression test.)
    const id = await create({ type: 1, format: '* * * * * *' });
    const tick = T0 + 1000;
    api.clock.jumpTo(tick);
    const r = await post<{ run_id: string }>('/xcron/triggerTask', { task_id: id });
    expect(r.body.code, r.text).toBe(0);
    expect(r.body.data.run_id).not.toBe(fireId(id, tick));
    const t = (await api.store.get(id))!;
    const res = await api.store.commitFires([
      { slot: t.slot, token: storedEpoch(api.dbFile), task_id: id, expected: tick, next: tick + 1000, now: tick, run: { run_id: fireId(id, tick), node: 'n', status: 'PENDING', error: null } },
    ]);
    expect(res).toEqual(['committed']);
    const runs = await api.store.pageRuns({ task_id: id, before: null, limit: 10 });
    const after = await query(id);
    expect(after.run_count).toBe(2);
    // Two fires (one manual, one scheduled) must be two run records with two distinct fire ids.
    expect(new Set(runs.map((x) => x.run_id)).size).toBe(2);
  });
});

// ---------------------------------------------------------------------------------------------

interface ListData {
  tasks: TaskData[];
  next_cursor: string | null;
}

describe('listTasks', () => {
  it('filters by state', async () => {
    const active = [await create({ type: 1, format: '* * * * *' }), await create({ type: 1, format: '* * * * *' }), await create({ type: 2, format: String(T0 / 1000 + 60) })];
    const paused = [await create({ type: 1, format: '* * * * *', paused: true }), await create({ type: 1, format: '* * * * *' })];
    await post('/xcron/pauseTask', { task_id: paused[1] });
    const p = await get<ListData>('/xcron/listTasks?state=paused');
    expect(p.body.code, p.text).toBe(0);
    expect(p.body.data.tasks.map((t) => t.task_id).sort()).toEqual([...paused].sort());
    expect(p.body.data.tasks.every((t) => t.state === 'paused')).toBe(true);
    expect(p.body.data.next_cursor).toBeNull();
    const a = await get<ListData>('/xcron/listTasks?state=active');
    expect(a.body.data.tasks.map((t) => t.task_id).sort()).toEqual([...active].sort());
    const all = await get<ListData>('/xcron/listTasks');
    expect(all.body.data.tasks).toHaveLength(5);
    const none = await get<ListData>('/xcron/listTasks?state=completed');
    expect(none.body.data.tasks).toEqual([]);
  });

  it('filters by name prefix (name=, also name_prefix=), combined with state', async () => {
    const ids: Record<string, string> = {};
    for (const n of ['billing-daily', 'billing-hourly', 'bill', 'report-1', 'Billing-upper']) ids[n] = await create({ type: 1, format: '* * * * *', name: n });
    await create({ type: 1, format: '* * * * *' }); // no name
    await post('/xcron/pauseTask', { task_id: ids['billing-hourly'] });
    const names = async (q: string): Promise<string[]> => {
      const r = await get<ListData>(`/xcron/listTasks?${q}`);
      expect(r.body.code, r.text).toBe(0);
      return r.body.data.tasks.map((t) => t.name as string).sort();
    };
    expect(await names('name=billing-')).toEqual(['billing-daily', 'billing-hourly']);
    expect(await names('name=bill')).toEqual(['bill', 'billing-daily', 'billing-hourly']);
    expect(await names('name_prefix=report')).toEqual(['report-1']);
    expect(await names('name=billing-&state=active')).toEqual(['billing-daily']);
    expect(await names('name=zzz')).toEqual([]);
  });

  it('paginates with a stable cursor while tasks are added: no task twice, none of the initial ones missed', async () => {
    const initial = new Set<string>();
    for (let i = 0; i < 23; i++) initial.add(await create({ type: 1, format: '* * * * *', name: `t${i}` }));
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    for (;;) {
      const q: string = `/xcron/listTasks?limit=5${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const r: AppResponse<ListData> = await get<ListData>(q);
      expect(r.body.code, r.text).toBe(0);
      expect(r.body.data.tasks.length).toBeLessThanOrEqual(5);
      seen.push(...r.body.data.tasks.map((t) => t.task_id));
      pages++;
      // Tasks created between pages.
      await create({ type: 1, format: '* * * * *', name: `added${pages}` });
      await create({ type: 1, format: '* * * * *', name: `added${pages}b` });
      cursor = r.body.data.next_cursor;
      if (!cursor) break;
      expect(pages).toBeLessThan(100);
    }
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of initial) expect(seen).toContain(id);
    expect([...seen]).toEqual([...seen].sort()); // ordered by id
    expect(pages).toBeGreaterThanOrEqual(5);
  });

  it('invalid limit, state or cursor: 1009 with a precise message', async () => {
    for (const limit of ['0', '1001', 'abc', '-1', '2.5']) {
      expectError(await get(`/xcron/listTasks?limit=${limit}`), 400, 1009, /invalid 'limit': must be an integer from 1 to 1000/);
    }
    expectError(await get('/xcron/listTasks?state=running'), 400, 1009, /invalid 'state': must be one of active, paused, completed, got "running"/);
    expectError(await get('/xcron/listTasks?cursor=%21%21%21'), 400, 1009, /invalid 'cursor': not a cursor returned by this API/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('taskRuns', () => {
  it('newest first with cursor pagination (no run twice, none missed)', async () => {
    const id = await create({ type: 1, format: '0 0 1 1 *' });
    const expected: string[] = [];
    for (let i = 0; i < 12; i++) {
      api.clock.advance(7);
      const r = await post<{ run_id: string }>('/xcron/triggerTask', { task_id: id });
      expected.push(r.body.data.run_id);
    }
    expected.reverse();
    const seen: RunView[] = [];
    let cursor: string | null = null;
    let pages = 0;
    for (;;) {
      const q: string = `/xcron/taskRuns?task_id=${id}&limit=5${cursor ? `&cursor=${cursor}` : ''}`;
      const r: AppResponse<{ runs: RunView[]; next_cursor: string | null }> = await get(q);
      expect(r.body.code, r.text).toBe(0);
      seen.push(...r.body.data.runs);
      pages++;
      cursor = r.body.data.next_cursor;
      if (!cursor) break;
    }
    expect(pages).toBe(3);
    expect(seen.map((r) => r.run_id)).toEqual(expected);
    for (let i = 1; i < seen.length; i++) expect(seen[i - 1]!.scheduled_time).toBeGreaterThan(seen[i]!.scheduled_time);
    expect(Object.keys(seen[0]!).sort()).toEqual(
      ['attempts', 'duration_ms', 'end_time', 'error', 'http_status', 'node', 'response_body', 'run_id', 'scheduled_time', 'start_time', 'status', 'task_id'].sort(),
    );
  });

  it('unknown task 1007/404; missing task_id 1000; invalid limit or cursor 1009', async () => {
    const id = await create({ type: 1, format: '* * * * *' });
    expectError(await get('/xcron/taskRuns?task_id=nope'), 404, 1007, /task "nope" not found/);
    expectError(await get('/xcron/taskRuns'), 400, 1000, /'task_id' is required/);
    expectError(await get(`/xcron/taskRuns?task_id=${id}&limit=0`), 400, 1009, /invalid 'limit'/);
    expectError(await get(`/xcron/taskRuns?task_id=${id}&limit=5000`), 400, 1009, /invalid 'limit': must be an integer from 1 to 1000/);
    expectError(await get(`/xcron/taskRuns?task_id=${id}&cursor=@@`), 400, 1009, /invalid 'cursor'/);
    // Well-formed base64url that does not decode to a run cursor.
    const bogus = Buffer.from('hello', 'utf8').toString('base64url');
    expectError(await get(`/xcron/taskRuns?task_id=${id}&cursor=${bogus}`), 400, 1009, /invalid 'cursor': not a cursor returned by this API/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('stats (store counts)', () => {
  it('counts tasks by state and runs by status', async () => {
    const a = await create({ type: 1, format: '* * * * *' });
    await create({ type: 1, format: '* * * * *' });
    const p = await create({ type: 1, format: '* * * * *', paused: true });
    await post('/xcron/triggerTask', { task_id: a });
    api.clock.advance(1);
    await post('/xcron/triggerTask', { task_id: p });
    const r = await get<{ node: string; tasks: Record<string, number>; runs: Record<string, number>; live: unknown }>('/xcron/stats');
    expect(r.body.code, r.text).toBe(0);
    expect(r.body.data.node).toBe('api-test');
    expect(r.body.data.tasks).toEqual({ active: 2, paused: 1, completed: 0 });
    expect(r.body.data.runs).toEqual({ PENDING: 2 });
  });
});

// ---------------------------------------------------------------------------------------------

describe('per-task options at create: validation (code + message) and round trip', () => {
  const later = T0 + 3_600_000;
  const cases: { name: string; body: Record<string, unknown>; status: number; code: number; message: RegExp }[] = [
    { name: 'timezone unknown', body: { timezone: 'Europe/Atlantis' }, status: 400, code: 1006, message: /unknown timezone "Europe\/Atlantis"/ },
    { name: 'timeout_ms too large', body: { timeout_ms: 300_001 }, status: 400, code: 1009, message: /invalid 'timeout_ms': must be an integer from 1 to 300000, got 300001/ },
    { name: 'timeout_ms fractional', body: { timeout_ms: 1.5 }, status: 400, code: 1009, message: /invalid 'timeout_ms'.*got 1\.5/ },
    { name: 'retry.max_attempts 101', body: { retry: { max_attempts: 101 } }, status: 400, code: 1009, message: /invalid 'retry\.max_attempts': must be an integer from 1 to 100, got 101/ },
    { name: 'retry.backoff_ms negative', body: { retry: { backoff_ms: -1 } }, status: 400, code: 1009, message: /invalid 'retry\.backoff_ms'.*got -1/ },
    { name: 'retry.max_backoff_ms below backoff_ms', body: { retry: { backoff_ms: 500, max_backoff_ms: 100 } }, status: 400, code: 1009, message: /invalid 'retry\.max_backoff_ms': must be >= backoff_ms \(500\), got 100/ },
    { name: 'retry unknown field', body: { retry: { attempts: 3 } }, status: 400, code: 1000, message: /unknown field 'retry\.attempts'/ },
    { name: 'misfire unknown', body: { misfire: 'catch_up' }, status: 400, code: 1009, message: /invalid 'misfire'.*got "catch_up"/ },
    { name: 'overlap unknown', body: { overlap: 'serial' }, status: 400, code: 1009, message: /invalid 'overlap'.*got "serial"/ },
    { name: 'name too long', body: { name: 'x'.repeat(201) }, status: 400, code: 1009, message: /invalid 'name': must be 1 to 200 characters, got 201/ },
    { name: 'paused a number', body: { paused: 1 }, status: 400, code: 1000, message: /'paused' must be true or false, got the number 1/ },
    { name: 'callback.method unknown', body: { callback: { url: URL_A, method: 'FETCH' } }, status: 400, code: 1009, message: /invalid 'callback\.method': must be one of "POST", "PUT", "PATCH", "DELETE", "GET", got "FETCH"/ },
    { name: 'callback.headers reserved Host', body: { callback: { url: URL_A, headers: { Host: 'evil' } } }, status: 400, code: 1009, message: /invalid 'callback\.headers': header 'Host' is set by xcron and cannot be overridden/ },
    { name: 'callback.headers reserved Content-Type', body: { callback: { url: URL_A, headers: { 'Content-Type': 'text/plain' } } }, status: 400, code: 1009, message: /header 'Content-Type' is set by xcron/ },
    { name: 'callback.headers reserved X-Xcron-*', body: { callback: { url: URL_A, headers: { 'X-Xcron-Fire-Id': 'forged' } } }, status: 400, code: 1009, message: /header 'X-Xcron-Fire-Id' is set by xcron/ },
    { name: 'callback.headers bad name', body: { callback: { url: URL_A, headers: { 'Bad Header': 'v' } } }, status: 400, code: 1009, message: /"Bad Header" is not a valid header name/ },
    { name: 'callback.headers CRLF in value', body: { callback: { url: URL_A, headers: { 'X-A': 'a\r\nX-B: b' } } }, status: 400, code: 1009, message: /invalid 'callback\.headers\.X-A': must not contain CR, LF or NUL/ },
    { name: 'idempotency_key empty', body: { idempotency_key: '' }, status: 400, code: 1009, message: /invalid 'idempotency_key': must be 1 to 200 characters, got 0/ },
    { name: 'start_time not a timestamp', body: { start_time: 'tomorrow' }, status: 400, code: 1009, message: /invalid 'start_time': must be a unix timestamp in seconds \(10 digits\) or milliseconds \(13 digits\), got "tomorrow"/ },
    { name: 'end_time 11 digits', body: { end_time: 19_000_000_000 }, status: 400, code: 1009, message: /invalid 'end_time': must be a unix timestamp/ },
    { name: 'end_time before start_time', body: { start_time: later + 60_000, end_time: later }, status: 400, code: 1009, message: /invalid 'end_time': must be after start_time \(\d+\), got \d+/ },
    { name: 'end_time equal to start_time', body: { start_time: later, end_time: later }, status: 400, code: 1009, message: /invalid 'end_time': must be after start_time/ },
    { name: 'end_time in the past (no fire left)', body: { end_time: T0 - 60_000 }, status: 400, code: 1009, message: /invalid 'end_time': the schedule has no fire time before end_time/ },
    { name: 'start_time on a one-shot', body: { type: 2, format: String(later / 1000), start_time: later }, status: 400, code: 1009, message: /invalid 'start_time': applies to periodic tasks \(type 1\) only/ },
    { name: 'end_time on a one-shot', body: { type: 2, format: String(later / 1000), end_time: later + 1000 }, status: 400, code: 1009, message: /invalid 'end_time': applies to periodic tasks \(type 1\) only/ },
    { name: 'on_success not an array', body: { on_success: 'abc' }, status: 400, code: 1000, message: /'on_success' must be an array of task ids/ },
    { name: 'on_success with a non-id', body: { on_success: [42] }, status: 400, code: 1009, message: /invalid 'on_success\[0\]': must be a task id string, got the number 42/ },
    { name: 'on_success unknown child', body: { on_success: ['no_such_task'] }, status: 400, code: 1009, message: /invalid 'on_success': child task "no_such_task" not found/ },
    { name: 'alert_url not a URL', body: { alert_url: 'mailto:ops@example.com' }, status: 400, code: 1003, message: /'alert_url' must use http or https/ },
    { name: 'max_consecutive_failures negative', body: { max_consecutive_failures: -1 }, status: 400, code: 1009, message: /invalid 'max_consecutive_failures': must be an integer from 0 to 10000, got -1/ },
    { name: 'callback.route without urls', body: { callback: { url: URL_A, route: 'broadcast' } }, status: 400, code: 1009, message: /invalid 'callback\.route': needs 'callback\.urls'/ },
    { name: 'callback.route unknown', body: { callback: { urls: [URL_A, URL_B], route: 'weighted' } }, status: 400, code: 1009, message: /invalid 'callback\.route': must be one of "failover", "round_robin", "random", "consistent_hash", "broadcast", got "weighted"/ },
    { name: 'callback.urls empty', body: { callback: { urls: [] } }, status: 400, code: 1003, message: /'callback\.urls' must hold 1 to 32 URLs, got 0/ },
    { name: 'callback.urls with a bad URL', body: { callback: { urls: [URL_A, 'not a url'] } }, status: 400, code: 1003, message: /'callback\.urls\[1\]' is not a valid absolute URL/ },
    { name: 'callback.url and different urls', body: { callback: { url: 'http://127.0.0.1:9/other', urls: [URL_A, URL_B] } }, status: 400, code: 1009, message: /invalid 'callback\.url': give either 'url' or 'urls'/ },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const r = await post('/xcron/createTask', { type: 1, format: '*/5 * * * *', callback: { url: URL_A }, ...c.body });
      expectError(r, c.status, c.code, c.message);
      expect(countRows(api.dbFile).tasks).toBe(0);
    });
  }

  it('valid options round-trip through queryTask', async () => {
    const child = await create({ type: 1, format: '0 0 1 1 *' });
    const id = await create({
      type: 1,
      format: '*/10 * * * * *',
      name: 'nightly-export',
      timezone: 'Asia/Tokyo',
      timeout_ms: 1500,
      retry: { max_attempts: 5, backoff_ms: 200, max_backoff_ms: 2000 },
      misfire: 'skip',
      overlap: 'skip',
      callback: { urls: [URL_A, URL_B], route: 'round_robin', body: { k: 'v' }, method: 'PATCH', headers: { 'X-Tenant': 'acme' } },
      start_time: String(Math.floor((T0 + 3_600_000) / 1000)),
      end_time: T0 + 7_200_000,
      on_success: [child],
      alert_url: 'http://127.0.0.1:9/alerts',
      max_consecutive_failures: 3,
    });
    const t = await query(id);
    expect(t).toMatchObject({
      name: 'nightly-export',
      timezone: 'Asia/Tokyo',
      timeout_ms: 1500,
      retry: { max_attempts: 5, backoff_ms: 200, max_backoff_ms: 2000 },
      misfire: 'skip',
      overlap: 'skip',
      start_time: T0 + 3_600_000,
      end_time: T0 + 7_200_000,
      on_success: [child],
      alert_url: 'http://127.0.0.1:9/alerts',
      max_consecutive_failures: 3,
    });
    expect(t.callback).toEqual({ url: URL_A, urls: [URL_A, URL_B], route: 'round_robin', body: { k: 'v' }, method: 'PATCH', headers: { 'X-Tenant': 'acme' } });
    // start_time in the future: the first fire is the first tick at or after it.
    // (start_time 01:00:30 is itself a */10 tick, so it is the first fire.)
    expect(t.next_fire_time).toBe(T0 + 3_600_000);
  });

  it('idempotency_key: the same key returns the same task_id and creates no second task', async () => {
    const body = { type: 1, format: '*/5 * * * *', callback: { url: URL_A }, idempotency_key: 'order-42' };
    const a = await post<{ task_id: string }>('/xcron/createTask', body);
    const b = await post<{ task_id: string }>('/xcron/createTask', { ...body, format: '0 * * * *' });
    expect(a.body.code).toBe(0);
    expect(b.body.code, b.text).toBe(0);
    expect(b.body.data.task_id).toBe(a.body.data.task_id);
    expect(b.body.message).toMatch(/existing task for this idempotency_key/);
    expect(countRows(api.dbFile).tasks).toBe(1);
    expect((await query(a.body.data.task_id)).format).toBe('*/5 * * * *');
    const c = await post<{ task_id: string }>('/xcron/createTask', { ...body, idempotency_key: 'order-43' });
    expect(c.body.data.task_id).not.toBe(a.body.data.task_id);
    expect(countRows(api.dbFile).tasks).toBe(2);
  });
});

// ---------------------------------------------------------------------------------------------

describe('child tasks: existence and cycle checks', () => {
  it('self-reference is refused at update with 1009', async () => {
    const a = await create({ type: 1, format: '0 0 1 1 *' });
    expectError(await post('/xcron/updateTask', { task_id: a, on_success: [a] }), 400, 1009, new RegExp(`invalid 'on_success': a task cannot be its own child \\(${a}\\)`));
    expect((await query(a)).on_success).toBeUndefined();
  });

  it('two concurrent updates cannot close a cycle (A.on_success=[B] racing B.on_success=[A])', async () => {
    // Each request checks the graph, then writes its own task (the optimistic check guards only
    // that task). Two requests that both check before either writes each see no cycle, and both
    // write: A -> B -> A is stored, and one successful run of A then triggers B, A, B, … forever.
    // A store whose updateTask waits (bounded) until both requests have passed their checks forces
    // that interleaving; a fix that serialises check-and-write simply lets the barrier time out.
    const dir = mkdtempSync(join(tmpdir(), 'xcron-manage-race-'));
    const real = new SqliteTaskStore({ file: join(dir, 'x.db'), synchronous: 'normal' });
    const ownership = new LocalOwnership('n', 16, real.claimEpoch());
    await ownership.start();
    let arrived = 0;
    let release: () => void = () => {};
    const barrier = new Promise<void>((r) => {
      release = r;
    });
    const store: TaskStore = new Proxy(real, {
      get(target, prop, receiver) {
        if (prop === 'updateTask') {
          return async (...args: Parameters<TaskStore['updateTask']>) => {
            if (args[1].on_success !== undefined) {
              arrived++;
              if (arrived >= 2) release();
              await Promise.race([barrier, new Promise<void>((r) => setTimeout(r, 2000).unref())]);
            }
            return target.updateTask(...args);
          };
        }
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const app = createApp({
      store,
      notifier: { taskChanged: () => {}, taskRemoved: () => {}, runQueued: () => {} },
      ownership,
      clock: new ManualClock(T0),
      log: pino({ level: 'silent' }),
      slots: 16,
      limits: { requestBodyLimit: 65_536, callbackBodyLimit: 4096, defaultTimezone: 'UTC', pastGraceMs: 1000 },
      version: 't',
      nodeId: 'n',
    });
    try {
      const mk = async (): Promise<string> => (await send<{ task_id: string }>(app, '/xcron/createTask', { json: { type: 1, format: '0 0 1 1 *', callback: { url: URL_A } } })).body.data.task_id;
      const a = await mk();
      const b = await mk();
      const [ra, rb] = await Promise.all([
        send(app, '/xcron/updateTask', { json: { task_id: a, on_success: [b] } }),
        send(app, '/xcron/updateTask', { json: { task_id: b, on_success: [a] } }),
      ]);
      const ta = (await real.get(a))!;
      const tb = (await real.get(b))!;
      const cycle = (ta.on_success ?? []).includes(b) && (tb.on_success ?? []).includes(a);
      expect(cycle, `both updates answered ${ra.body.code} / ${rb.body.code}; stored A.on_success=${JSON.stringify(ta.on_success)} B.on_success=${JSON.stringify(tb.on_success)}`).toBe(false);
      // Exactly one of them is refused, with 1009.
      expect([ra.body.code, rb.body.code].sort()).toEqual([0, 1009]);
    } finally {
      await ownership.stop();
      await real.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a longer cycle A -> B -> C -> A is refused at update with 1009 naming the cycle', async () => {
    const c = await create({ type: 1, format: '0 0 1 1 *', name: 'C' });
    const b = await create({ type: 1, format: '0 0 1 1 *', name: 'B', on_success: [c] });
    const a = await create({ type: 1, format: '0 0 1 1 *', name: 'A', on_success: [b] });
    const r = await post('/xcron/updateTask', { task_id: c, on_success: [a] });
    expectError(r, 400, 1009, new RegExp(`invalid 'on_success': it would form a cycle ${c} -> ${a} -> ${b} -> ${c}`));
    expect((await query(c)).on_success).toBeUndefined();
    // A two-step cycle too.
    expectError(await post('/xcron/updateTask', { task_id: b, on_success: [c, a] }), 400, 1009, new RegExp(`cycle ${b} -> ${a} -> ${b}`));
    // Not a cycle: a diamond is fine.
    const d = await create({ type: 1, format: '0 0 1 1 *', name: 'D' });
    const ok = await post('/xcron/updateTask', { task_id: d, on_success: [b, c] });
    expect(ok.body.code, ok.text).toBe(0);
    expect((await query(d)).on_success).toEqual([b, c]);
    // Unknown child at update.
    expectError(await post('/xcron/updateTask', { task_id: d, on_success: ['ghost'] }), 400, 1009, /child task "ghost" not found/);
    // Clearing with null.
    const cleared = await post('/xcron/updateTask', { task_id: d, on_success: null });
    expect(cleared.body.code, cleared.text).toBe(0);
    expect((await query(d)).on_success).toBeUndefined();
  });
});
