/**
 * Operator features through the API with real firing (harness.ts: the in-process node on a real
 * SQLite file, real delivery to a real HTTP receiver): runs across tasks and the dead-letter list,
 * triggerTask with a one-off body, retryRun / retryRuns, tags with bulk operations, and the daily
 * report (kept across a restart and the pruning of run records). Waits are on events only.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { send } from '../helpers/app.js';
import { header, Receiver } from '../helpers/receiver.js';
import { waitUntil } from '../helpers/wait.js';
import { Harness, type RunView } from './harness.js';

interface OpsRun extends RunView {
  task_name?: string;
  retry_of?: string;
  retried_by?: string;
  fire_id?: string;
  request?: { body?: unknown; headers?: Record<string, string> };
}
type RunsPage = { runs: OpsRun[]; next_cursor: string | null };

let h: Harness;
let rx: Receiver;
beforeEach(async () => {
  rx = await Receiver.start();
  h = await Harness.start();
});
afterEach(async () => {
  await rx.close();
  await h.close();
});

const FINAL = ['SUCCESS', 'FAIL', 'SKIPPED', 'MISSED'];

async function finalRun(taskId: string, runId: string): Promise<OpsRun> {
  const runs = await waitUntil(() => h.runs(taskId), (rs) => rs.some((r) => r.run_id === runId && FINAL.includes(r.status)), 20_000, `run ${runId} to be final`);
  return runs.find((r) => r.run_id === runId)!;
}

/** A one-shot far ahead (it never fires by itself): runs come from triggerTask only. */
const later = (): string => String(Math.floor(Date.now() / 1000) + 3600);

describe('triggerTask with a one-off body and headers', () => {
  it('sends them for that run only, keeps them on the run record, and leaves the task unchanged', async () => {
    const id = await h.create({ type: 2, format: later(), name: 'one-off', callback: { url: rx.url('/t'), body: { from: 'task' }, headers: { 'X-Keep': 'task', 'X-Over': 'task' } } });
    // Raw text: the body's integer beyond 2^53 is sent as given, digit for digit.
    const raw = `{"task_id":"${id}","body":{"from":"trigger","n":12345678901234567890},"headers":{"x-over":"run"}}`;
    const res = await send<{ run_id: string }>(h.app, '/xcron/triggerTask', { body: raw, headers: { 'content-type': 'application/json' } });
    expect(res.body.code).toBe(0);
    const t = res.body.data;
    await rx.waitFor((rs) => rs.some((r) => header(r, 'x-xcron-fire-id') === t.run_id), 10_000, 'the triggered run');
    const got = rx.to('/t').find((r) => header(r, 'x-xcron-fire-id') === t.run_id)!;
    expect(got.body).toBe('{"from":"trigger","n":12345678901234567890}');
    expect(header(got, 'x-keep')).toBe('task');
    expect(header(got, 'x-over')).toBe('run');
    const run = await finalRun(id, t.run_id);
    expect(run.request).toEqual({ body: { from: 'trigger', n: 12345678901234567000 }, headers: { 'x-over': 'run' } });
    const q = await h.query(id);
    expect(q.callback).toEqual({ url: rx.url('/t'), body: { from: 'task' }, headers: { 'X-Keep': 'task', 'X-Over': 'task' } });
    // A plain trigger afterwards sends the task's body again.
    const plain = await h.trigger(id);
    await rx.waitFor((rs) => rs.some((r) => header(r, 'x-xcron-fire-id') === plain.run_id), 10_000, 'the plain trigger');
    expect(rx.to('/t').find((r) => header(r, 'x-xcron-fire-id') === plain.run_id)!.body).toBe('{"from":"task"}');
  });

  it('refuses unknown fields, bad headers and bodies, and creates no run', async () => {
    const id = await h.create({ type: 2, format: later(), callback: { url: rx.url('/t') } });
    const cases: [unknown, number, number, RegExp][] = [
      [{ task_id: id, bdy: {} }, 400, 1000, /unknown field 'bdy'/],
      [{ task_id: id, body: [1] }, 400, 1000, /'body' must be a JSON object/],
      [{ task_id: id, headers: { 'X-A': 'line\nbreak' } }, 400, 1009, /headers\.X-A/],
      [{ task_id: id, headers: { 'X-Xcron-Fire-Id': 'x' } }, 400, 1009, /set by xcron/],
      [{ task_id: id, body: { big: 'x'.repeat(70_000) } }, 413, 1008, /over/],
    ];
    for (const [body, status, code, msg] of cases) {
      const r = await h.req('/xcron/triggerTask', body);
      expect([r.status, r.body.code], JSON.stringify(body).slice(0, 80)).toEqual([status, code]);
      expect(r.body.message).toMatch(msg);
    }
    expect(await h.runs(id)).toEqual([]);
    expect((await h.query(id)).run_count).toBe(0);
  });
});

describe('failed runs: list, retry, dead letter', () => {
  it('lists failures across tasks with task names; retryRun replays with the original one-off body and fire id', async () => {
    let fail = true;
    rx.on('/f', () => ({ status: fail ? 500 : 200 }));
    const a = await h.create({ type: 2, format: later(), name: 'billing-a', callback: { url: rx.url('/f'), body: { k: 'task' } } });
    const b = await h.create({ type: 2, format: later(), name: 'other-b', callback: { url: rx.url('/f') } });
    const ra = await h.ok<{ run_id: string }>('/xcron/triggerTask', { task_id: a, body: { k: 'once' }, headers: { 'X-Once': '1' } });
    const rb = await h.trigger(b);
    expect((await finalRun(a, ra.run_id)).status).toBe('FAIL');
    expect((await finalRun(b, rb.run_id)).status).toBe('FAIL');

    const all = await h.ok<RunsPage>('/xcron/runs?status=FAIL');
    expect(all.runs.map((r) => r.run_id).sort()).toEqual([ra.run_id, rb.run_id].sort());
    expect(all.runs.find((r) => r.run_id === ra.run_id)!.task_name).toBe('billing-a');
    const pre = await h.ok<RunsPage>('/xcron/runs?status=FAIL&name_prefix=bill');
    expect(pre.runs.map((r) => r.run_id)).toEqual([ra.run_id]);
    expect((await h.ok<RunsPage>('/xcron/runs?status=SUCCESS')).runs).toEqual([]);

    fail = false;
    const retried = await h.ok<{ run_id: string; retry_of: string; task_id: string }>('/xcron/retryRun', { run_id: ra.run_id });
    expect(retried).toMatchObject({ run_id: `${ra.run_id}:r1`, retry_of: ra.run_id, task_id: a });
    const redo = await finalRun(a, retried.run_id);
    expect(redo).toMatchObject({ status: 'SUCCESS', retry_of: ra.run_id, fire_id: ra.run_id, request: { body: { k: 'once' }, headers: { 'X-Once': '1' } } });
    const sent = rx.to('/f').filter((r) => header(r, 'x-xcron-run-id') === retried.run_id);
    expect(sent).toHaveLength(1);
    expect(header(sent[0]!, 'x-xcron-fire-id')).toBe(ra.run_id);
    expect(sent[0]!.body).toBe('{"k":"once"}');
    expect(header(sent[0]!, 'x-once')).toBe('1');
    const orig = ((await h.runs(a)) as OpsRun[]).find((r) => r.run_id === ra.run_id)!;
    expect(orig.retried_by).toBe(retried.run_id);

    // The dead-letter list: failed runs not replayed yet.
    const dead = await h.ok<RunsPage>('/xcron/runs?status=FAIL&replayed=false');
    expect(dead.runs.map((r) => r.run_id)).toEqual([rb.run_id]);
    expect((await h.ok<RunsPage>('/xcron/runs?status=FAIL&replayed=true')).runs.map((r) => r.run_id)).toEqual([ra.run_id]);

    const again = await h.req('/xcron/retryRun', { run_id: ra.run_id });
    expect([again.status, again.body.code]).toEqual([409, 1023]);
    expect(again.body.message).toContain(retried.run_id);
    const notFailed = await h.req('/xcron/retryRun', { run_id: retried.run_id });
    expect([notFailed.status, notFailed.body.code]).toEqual([409, 1022]);
    const unknown = await h.req('/xcron/retryRun', { run_id: `${a}:123` });
    expect([unknown.status, unknown.body.code]).toEqual([404, 1021]);
    const extra = await h.req('/xcron/retryRun', { run_id: ra.run_id, body: {} });
    expect([extra.status, extra.body.code]).toEqual([400, 1000]);
  });

  it('retryRuns replays the matching failed runs up to the cap; dry_run changes nothing', async () => {
    let fail = true;
    rx.on('/f', () => ({ status: fail ? 503 : 200 }));
    const id = await h.create({ type: 2, format: later(), name: 'batch', callback: { url: rx.url('/f') } });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const t = await h.trigger(id);
      await finalRun(id, t.run_id);
      ids.push(t.run_id);
    }
    const dry = await h.ok<{ count: number; run_ids: string[]; remaining: number }>('/xcron/retryRuns', { task_id: id, limit: 2, dry_run: true });
    expect(dry.count).toBe(2);
    expect(dry.run_ids).toEqual([ids[2], ids[1]]); // newest first
    expect(dry.remaining).toBe(1); // the cap left one: the answer says so
    expect((await h.req('/xcron/retryRuns', { task_id: id, limit: 2, dry_run: true })).body.message).toBe('ok (1 more FAIL runs match: call again to retry them)');
    expect(await h.ok('/xcron/retryRuns', { task_id: id, limit: 3, dry_run: true })).toMatchObject({ count: 3, remaining: 0, remaining_capped: false });
    expect((await h.ok<RunsPage>('/xcron/runs?status=FAIL&replayed=false')).runs).toHaveLength(3);
    fail = false;
    const done = await h.ok<{ count: number; run_ids: string[] }>('/xcron/retryRuns', { name_prefix: 'bat', limit: 2 });
    expect(done).toEqual({ count: 2, run_ids: [`${ids[2]}:r1`, `${ids[1]}:r1`], remaining: 1, remaining_capped: false });
    for (const r of done.run_ids) expect((await finalRun(id, r)).status).toBe('SUCCESS');
    expect((await h.ok<RunsPage>('/xcron/runs?status=FAIL&replayed=false')).runs.map((r) => r.run_id)).toEqual([ids[0]]);
    for (const [body, code] of [
      [{ limit: 1001 }, 1009],
      [{ status: 'SUCCESS' }, 1009],
      [{ limit: 1, since: 1 }, 1000],
    ] as const) {
      const r = await h.req('/xcron/retryRuns', body);
      expect([r.status, r.body.code]).toEqual([400, code]);
    }
  });

  it('pages runs across tasks newest first with a cursor, filtered by time and task', async () => {
    const x = await h.create({ type: 2, format: later(), callback: { url: rx.url('/ok') } });
    const y = await h.create({ type: 2, format: later(), callback: { url: rx.url('/ok') } });
    const made: { run_id: string; scheduled_time: number }[] = [];
    for (let i = 0; i < 5; i++) made.push(await h.trigger(i % 2 === 0 ? x : y));
    for (const m of made) await finalRun(m.run_id.split(':')[0]!, m.run_id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: RunsPage = await h.ok<RunsPage>(`/xcron/runs?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.runs.length).toBeLessThanOrEqual(2);
      seen.push(...page.runs.map((r) => r.run_id));
      cursor = page.next_cursor;
    } while (cursor);
    const newestFirst = [...made].sort((p, q) => q.scheduled_time - p.scheduled_time || (q.run_id < p.run_id ? -1 : 1)).map((m) => m.run_id);
    expect(seen).toEqual(newestFirst);
    const onlyX = await h.ok<RunsPage>(`/xcron/runs?task_id=${x}`);
    expect(onlyX.runs.map((r) => r.run_id)).toEqual(newestFirst.filter((r) => r.startsWith(`${x}:`)));
    const window = await h.ok<RunsPage>(`/xcron/runs?from=${made[1]!.scheduled_time}&to=${made[3]!.scheduled_time}`);
    expect(window.runs.map((r) => r.run_id).sort()).toEqual(made.slice(1, 4).map((m) => m.run_id).sort());
    for (const q of ['status=DONE', 'from=-1', 'to=abc', 'replayed=maybe', 'limit=0', 'cursor=%%%']) {
      const r = await h.req(`/xcron/runs?${q}`);
      expect([r.status, r.body.code], q).toEqual([400, 1009]);
    }
  });
});

describe('tags and bulk operations', () => {
  it('filters listTasks by tag and last_status; pauses, resumes and deletes in bulk with dry_run', async () => {
    rx.on('/bad', { status: 500 });
    const a = await h.create({ type: 1, format: '0 0 1 1 *', name: 'etl-a', tags: ['etl', 'team:data'], callback: { url: rx.url('/ok') } });
    const b = await h.create({ type: 1, format: '0 0 1 1 *', name: 'etl-b', tags: ['etl'], callback: { url: rx.url('/bad') } });
    const c = await h.create({ type: 1, format: '0 0 1 1 *', name: 'web-c', tags: ['web'], callback: { url: rx.url('/ok') } });
    expect((await h.query(a)).tags).toEqual(['etl', 'team:data']);
    expect((await h.query(a)).description).toBe('At 00:00, on day 1 of the month, only in January (UTC)');
    const listed = await h.ok<{ tasks: { task_id: string; description: string }[] }>('/xcron/listTasks?tag=web');
    expect(listed.tasks).toMatchObject([{ task_id: c, description: 'At 00:00, on day 1 of the month, only in January (UTC)' }]);
    const preview = await h.ok<{ description: string }>('/ui/api/next-fires?type=1&format=0%200%2012%20%3F%20*%202-6&timezone=Europe%2FBerlin');
    expect(preview.description).toBe('At 12:00, Monday through Friday (Europe/Berlin)');
    const list = async (q: string): Promise<string[]> => (await h.ok<{ tasks: { task_id: string }[] }>(`/xcron/listTasks?${q}`)).tasks.map((t) => t.task_id).sort();
    expect(await list('tag=etl')).toEqual([a, b].sort());
    expect(await list('tag=team:data')).toEqual([a]);
    const tb = await h.trigger(b);
    await finalRun(b, tb.run_id);
    expect(await list('last_status=FAIL')).toEqual([b]);
    expect(await list('last_status=FAIL&tag=web')).toEqual([]);

    const dry = await h.ok<{ count: number; task_ids: string[]; dry_run: boolean }>('/xcron/pauseTasks', { tag: 'etl', dry_run: true });
    expect({ ...dry, task_ids: dry.task_ids.sort() }).toEqual({ count: 2, task_ids: [a, b].sort(), dry_run: true });
    expect((await h.query(a)).state).toBe('active');
    const paused = await h.ok<{ count: number; task_ids: string[] }>('/xcron/pauseTasks', { tag: 'etl' });
    expect(paused.count).toBe(2);
    expect([(await h.query(a)).state, (await h.query(b)).state, (await h.query(c)).state]).toEqual(['paused', 'paused', 'active']);
    expect((await h.ok<{ count: number }>('/xcron/pauseTasks', { tag: 'etl' })).count).toBe(0);
    expect((await h.ok<{ count: number }>('/xcron/resumeTasks', { name_prefix: 'etl-' })).count).toBe(2);
    expect((await h.query(b)).state).toBe('active');
    const del = await h.ok<{ count: number; task_ids: string[] }>('/xcron/deleteTasks', { name_prefix: 'web' });
    expect(del).toMatchObject({ count: 1, task_ids: [c] });
    expect((await h.req(`/xcron/queryTask?task_id=${c}`)).body.code).toBe(1007);

    for (const [path, body, code] of [
      ['/xcron/pauseTasks', {}, 1000],
      ['/xcron/pauseTasks', { tag: 'etl', name_prefix: 'etl' }, 1000],
      ['/xcron/deleteTasks', { tag: 'bad tag' }, 1009],
      ['/xcron/resumeTasks', { tag: 'etl', dryrun: true }, 1000],
      ['/xcron/pauseTasks', { tag: 'etl', dry_run: 'yes' }, 1009],
    ] as const) {
      const r = await h.req(path, body);
      expect([r.status, r.body.code], JSON.stringify(body)).toEqual([400, code]);
    }
    for (const tags of [['x'.repeat(65)], Array.from({ length: 17 }, (_, i) => `t${i}`), 'etl', [1]]) {
      const r = await h.req('/xcron/createTask', { type: 1, format: '0 0 1 1 *', tags, callback: { url: rx.url('/ok') } });
      expect([r.status, r.body.code], JSON.stringify(tags).slice(0, 40)).toEqual([400, (typeof tags === 'string' || typeof tags[0] === 'number') && !Array.isArray(tags) ? 1000 : r.body.code]);
      expect(r.body.message).toMatch(/tags/);
    }
    const cleared = await h.ok('/xcron/updateTask', { task_id: a, tags: [] });
    expect(cleared).toBeTruthy();
    expect((await h.query(a)).tags).toBeUndefined();
    expect(await list('tag=team:data')).toEqual([]);
  });
});

describe('daily report', () => {
  it('counts runs by status per UTC day with lateness percentiles, across a restart and run pruning', async () => {
    rx.on('/bad', { status: 500 });
    const ok = await h.create({ type: 2, format: later(), callback: { url: rx.url('/ok') } });
    const bad = await h.create({ type: 2, format: later(), callback: { url: rx.url('/bad') } });
    for (const id of [ok, ok, bad]) {
      const t = await h.trigger(id);
      await finalRun(id, t.run_id);
    }
    const today = new Date().toISOString().slice(0, 10);
    type Day = { date: string; success: number; fail: number; skipped: number; missed: number; lateness_p50_ms: number | null; lateness_p99_ms: number | null };
    const read = async (): Promise<Day[]> => (await h.ok<{ days: Day[] }>('/xcron/report?days=2')).days;
    const days = await read();
    expect(days.map((d) => d.date)).toHaveLength(2);
    const d = days[1]!;
    expect(d).toMatchObject({ date: today, success: 2, fail: 1, skipped: 0, missed: 0 });
    expect(d.lateness_p50_ms).toBeGreaterThan(0);
    expect(d.lateness_p99_ms).toBeGreaterThanOrEqual(d.lateness_p50_ms!);
    expect(days[0]).toMatchObject({ success: 0, fail: 0, lateness_p50_ms: null });

    expect(await h.store.pruneRuns(Date.now() + 60_000, 0)).toBe(3);
    expect(await h.runs(ok)).toEqual([]);
    await h.stop();
    h = await h.restart();
    expect((await read())[1]).toMatchObject({ date: today, success: 2, fail: 1 });
    for (const q of ['days=0', 'days=367', 'days=x']) {
      const r = await h.req(`/xcron/report?${q}`);
      expect([r.status, r.body.code], q).toEqual([400, 1009]);
    }
    expect((await h.ok<{ days: Day[] }>('/xcron/report')).days).toHaveLength(30);
  });
});
