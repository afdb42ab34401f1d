/**
 * Issue 26: a pause's note and the auto-pause reason are stored with the task (`pause`), shown by
 * queryTask and listTasks, survive a restart, and are cleared on resume; pauseTasks takes a note;
 * the token's name is recorded as who paused it; bulk operations act on every selected task (no
 * cap: more tasks than one page of the store). The in-process node on a real SQLite file with real
 * delivery (harness.ts), and the ops app with tokens (test/ops/helpers.ts).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { send } from '../helpers/app.js';
import { Receiver } from '../helpers/receiver.js';
import { waitUntil } from '../helpers/wait.js';
import { createOpsApp } from '../ops/helpers.js';
import { Harness } from './harness.js';

interface Pause {
  kind: 'manual' | 'auto';
  note: string | null;
  by: string | null;
  at: number;
}

let h: Harness;
let rx: Receiver;
beforeEach(async () => {
  rx = await Receiver.start();
  h = await Harness.start({ maxConsecutiveFailures: 0 });
});
afterEach(async () => {
  await rx.close();
  await h.close();
});

const pauseOf = async (id: string): Promise<Pause | undefined> => (await h.query(id)).pause as Pause | undefined;
const later = (): string => String(Math.floor(Date.now() / 1000) + 3600);

describe('pause notes', () => {
  it('pauseTask keeps the note with when; listTasks shows it; a second pause keeps the first; resume clears it; kept across a restart', async () => {
    const id = await h.create({ type: 1, format: '0 0 1 1 *', name: 'noted', callback: { url: rx.url('/ok') } });
    const before = Date.now();
    expect(await h.ok('/xcron/pauseTask', { task_id: id, note: '  waiting for the vendor fix, OPS-123  ' })).toEqual({ task_id: id, state: 'paused' });
    const p = (await pauseOf(id))!;
    expect(p).toMatchObject({ kind: 'manual', note: 'waiting for the vendor fix, OPS-123', by: null });
    expect(p.at).toBeGreaterThanOrEqual(before);
    const listed = await h.ok<{ tasks: { task_id: string; pause?: Pause }[] }>('/xcron/listTasks?state=paused');
    expect(listed.tasks.find((t) => t.task_id === id)?.pause).toEqual(p);
    // Paused already: nothing changes, the first note stays.
    await h.ok('/xcron/pauseTask', { task_id: id, note: 'another' });
    expect(await pauseOf(id)).toEqual(p);

    // Stored: a restart on the same file shows it.
    await h.stop();
    h = await h.restart();
    expect(await pauseOf(id)).toEqual(p);

    await h.ok('/xcron/resumeTask', { task_id: id });
    expect(await h.query(id)).toMatchObject({ state: 'active' });
    expect(await pauseOf(id)).toBeUndefined();
    // Paused without a note: who and when, note null.
    await h.ok('/xcron/pauseTask', { task_id: id });
    expect(await pauseOf(id)).toMatchObject({ kind: 'manual', note: null, by: null });
    // updateTask paused: false clears it; paused: true records a manual pause.
    await h.ok('/xcron/updateTask', { task_id: id, paused: false });
    expect(await pauseOf(id)).toBeUndefined();
    await h.ok('/xcron/updateTask', { task_id: id, paused: true });
    expect(await pauseOf(id)).toMatchObject({ kind: 'manual', note: null });
  });

  it('refuses a bad note or an unknown field with a specific code, and changes nothing', async () => {
    const id = await h.create({ type: 1, format: '0 0 1 1 *', callback: { url: rx.url('/ok') } });
    for (const [body, status, code, msg] of [
      [{ task_id: id, note: 'x'.repeat(501) }, 400, 1009, /'note'.*at most 500 characters, got 501/],
      [{ task_id: id, note: 5 }, 400, 1000, /'note' must be a string/],
      [{ task_id: id, note: 'bell\u0007' }, 400, 1009, /control characters/],
      [{ task_id: id, reason: 'x' }, 400, 1000, /unknown field 'reason'/],
      [{ note: 'x' }, 400, 1000, /task_id/],
      [{ tag: 'x', note: 'x'.repeat(600) }, 400, 1009, /'note'/],
    ] as const) {
      const path = 'tag' in body ? '/xcron/pauseTasks' : '/xcron/pauseTask';
      const r = await h.req(path, body);
      expect([r.status, r.body.code], JSON.stringify(body).slice(0, 60)).toEqual([status, code]);
      expect(r.body.message).toMatch(msg);
    }
    expect((await h.query(id)).state).toBe('active');
    expect((await h.req('/xcron/resumeTasks', { tag: 'x', note: 'no' })).body.code).toBe(1000); // a note goes with a pause only
  });

  it('pauseTasks records the note on every task it pauses; a dry run records nothing', async () => {
    const ids = await Promise.all(['a', 'b'].map((n) => h.create({ type: 1, format: '0 0 1 1 *', name: `bulk-${n}`, tags: ['nightly'], callback: { url: rx.url('/ok') } })));
    await h.ok('/xcron/pauseTasks', { tag: 'nightly', note: 'freeze', dry_run: true });
    for (const id of ids) expect(await pauseOf(id)).toBeUndefined();
    expect(await h.ok('/xcron/pauseTasks', { tag: 'nightly', note: 'freeze for the migration' })).toMatchObject({ count: 2 });
    for (const id of ids) expect(await pauseOf(id)).toMatchObject({ kind: 'manual', note: 'freeze for the migration' });
    await h.ok('/xcron/resumeTasks', { name_prefix: 'bulk-' });
    for (const id of ids) expect(await pauseOf(id)).toBeUndefined();
  });

  it('the auto-pause stores its reason with the newest failure', async () => {
    rx.on('/down', { status: 500, body: 'boom' });
    const id = await h.create({ type: 2, format: later(), name: 'flaky', max_consecutive_failures: 2, callback: { url: rx.url('/down') } });
    for (let i = 0; i < 2; i++) {
      const t = await h.trigger(id);
      await waitUntil(() => h.runs(id), (rs) => rs.some((r) => r.run_id === t.run_id && r.status === 'FAIL'), 20_000, `failure ${i + 1}`);
    }
    const q = await waitUntil(() => h.query(id), (t) => t.state === 'paused', 20_000, 'the auto-pause');
    expect(q.pause).toMatchObject({ kind: 'auto', by: null });
    expect((q.pause as Pause).note).toMatch(/^auto-paused after 2 consecutive failures: .*500/);
    await h.ok('/xcron/resumeTask', { task_id: id });
    expect(await pauseOf(id)).toBeUndefined();
  });
});

describe('bulk operations have no cap', () => {
  it('pauses, resumes and deletes every selected task, over more than one page (500) of the store', async () => {
    const N = 1100;
    const tasks = Array.from({ length: N }, (_, i) => ({ type: 1, format: '0 0 1 1 *', name: `many-${i}`, tags: ['many'], callback: { url: rx.url('/ok') } }));
    for (let i = 0; i < N; i += 1000) {
      const r = await h.ok<{ failed: number }>('/xcron/createTasks', { tasks: tasks.slice(i, i + 1000) });
      expect(r.failed).toBe(0);
    }
    const dry = await h.ok<{ count: number; task_ids: string[] }>('/xcron/pauseTasks', { tag: 'many', dry_run: true });
    expect(dry.count).toBe(N);
    expect(dry.task_ids).toHaveLength(1000); // the list is cut; the count is not
    const paused = await h.req<{ count: number }>('/xcron/pauseTasks', { tag: 'many', note: 'all of them' });
    expect(paused.body.data.count).toBe(N);
    expect(paused.body.message).toBe('ok (task_ids lists the first 1000)');
    const stats = await h.ok<{ tasks: Record<string, number> }>('/xcron/stats');
    expect(stats.tasks.paused).toBe(N);
    expect((await h.ok<{ count: number }>('/xcron/resumeTasks', { name_prefix: 'many-' })).count).toBe(N);
    expect((await h.ok<{ count: number }>('/xcron/deleteTasks', { tag: 'many' })).count).toBe(N);
    expect((await h.ok<{ tasks: unknown[] }>('/xcron/listTasks?tag=many')).tasks).toEqual([]);
  }, 120_000);
});

describe('who paused it', () => {
  it("records the API token's name", async () => {
    const admin = { token: 'admin-token-0123456789abcdef', role: 'admin' as const, name: 'ops-admin' };
    const api = await createOpsApp({ tokens: [admin] });
    try {
      const auth = { authorization: `Bearer ${admin.token}` };
      const c = await send<{ task_id: string }>(api.app, '/xcron/createTask', { json: { type: 1, format: '0 0 1 1 *', callback: { url: 'http://127.0.0.1:9/hook' } }, headers: auth });
      const id = c.body.data.task_id;
      expect((await send(api.app, '/xcron/pauseTask', { json: { task_id: id, note: 'by hand' }, headers: auth })).body.code).toBe(0);
      const q = await send<{ pause: Pause }>(api.app, `/xcron/queryTask?task_id=${id}`, { headers: auth });
      expect(q.body.data.pause).toMatchObject({ kind: 'manual', note: 'by hand', by: 'ops-admin' });
    } finally {
      await api.close();
    }
  });
});
