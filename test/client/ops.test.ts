/**
 * The client's operator methods against the real built server: tags and the bulk actions by tag
 * and name prefix (with dry runs), triggerTask with a one-off body and headers, runs across tasks
 * with their filters and pagination, replay of failed runs (one and in bulk) with the typed
 * conflict and not-found errors, the daily report, and a check that every documented API operation
 * has a method.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { XcronClient, XcronConflictError, XcronNotFoundError, XcronValidationError, type XcronApiError } from '../../clients/typescript/src/index.js';
import { header } from '../helpers/receiver.js';
import { sharedServer } from '../helpers/suites.js';
import { waitUntil } from '../helpers/wait.js';

const fx = sharedServer();

async function thrown(p: Promise<unknown>): Promise<XcronApiError> {
  try {
    await p;
  } catch (e) {
    return e as XcronApiError;
  }
  throw new Error('expected the call to throw');
}

const unique = (): string => randomUUID().slice(0, 8);

describe('coverage', () => {
  it('every API operation the server documents has a client method', async () => {
    const doc = (await (await fetch(`${fx.server.baseUrl}/openapi.json`)).json()) as { paths: Record<string, Record<string, { operationId: string }>> };
    const methodOf: Record<string, string> = { dailyReport: 'report' };
    const api = Object.entries(doc.paths).filter(([path]) => path.startsWith('/xcron/') || ['/healthz', '/readyz', '/metrics'].includes(path));
    expect(api.length).toBeGreaterThan(20);
    const missing = api.flatMap(([, ops]) => Object.values(ops).map((o) => methodOf[o.operationId] ?? o.operationId)).filter((name) => typeof (XcronClient.prototype as unknown as Record<string, unknown>)[name] !== 'function');
    expect(missing).toEqual([]);
  });
});

describe('tags and bulk actions', () => {
  it('listTasks by tag, pause/resume/delete by tag and by name prefix, dry runs change nothing', async () => {
    const tag = `ops-${unique()}`;
    const prefix = `${tag}-task-`;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await fx.client.createTask({ type: 1, format: '0 0 1 1 *', name: `${prefix}${i}`, tags: [tag, 'other'], callback: { url: fx.recv.url('/bulk') } })).task_id);
    }
    const other = (await fx.client.createTask({ type: 1, format: '0 0 1 1 *', name: `x-${tag}`, callback: { url: fx.recv.url('/bulk') } })).task_id;
    expect((await fx.client.queryTask(ids[0]!)).tags).toEqual([tag, 'other']);

    const listed = await fx.client.listTasks({ tag });
    expect(listed.tasks.map((t) => t.task_id).sort()).toEqual([...ids].sort());

    const dry = await fx.client.pauseTasks({ tag }, { dry_run: true });
    expect(dry).toEqual({ count: 3, task_ids: expect.any(Array), dry_run: true });
    expect([...dry.task_ids].sort()).toEqual([...ids].sort());
    expect((await fx.client.listTasks({ tag, state: 'paused' })).tasks).toEqual([]);

    const paused = await fx.client.pauseTasks({ tag }, { note: 'bulk freeze' });
    expect(paused.count).toBe(3);
    expect(paused.dry_run).toBe(false);
    expect((await fx.client.listTasks({ tag, state: 'paused' })).tasks).toHaveLength(3);
    expect((await fx.client.queryTask(ids[0]!)).pause).toMatchObject({ kind: 'manual', note: 'bulk freeze', by: null });
    expect((await fx.client.queryTask(other)).state).toBe('active');
    // One task, with a note: kept on the task until it is resumed.
    expect(await fx.client.pauseTask(other, { note: 'vendor outage' })).toEqual({ task_id: other, state: 'paused' });
    const p = (await fx.client.queryTask(other)).pause;
    expect(p).toMatchObject({ kind: 'manual', note: 'vendor outage', by: null });
    expect(typeof p?.at).toBe('number');
    await fx.client.resumeTask(other);
    expect((await fx.client.queryTask(other)).pause).toBeUndefined();

    const resumed = await fx.client.resumeTasks({ name_prefix: prefix });
    expect(resumed.count).toBe(3);
    expect((await fx.client.listTasks({ tag, state: 'active' })).tasks).toHaveLength(3);

    expect((await fx.client.deleteTasks({ tag }, { dry_run: true })).count).toBe(3);
    expect((await fx.client.listTasks({ tag })).tasks).toHaveLength(3);
    const deleted = await fx.client.deleteTasks({ tag });
    expect(deleted.count).toBe(3);
    expect((await fx.client.listTasks({ tag })).tasks).toEqual([]);
    expect((await fx.client.queryTask(other)).state).toBe('active');
    await fx.client.deleteTask(other);
  });

  it('a bad selector or tag is a typed validation error naming the problem', async () => {
    // Both selectors at once: the type forbids it, the server says so too.
    const both = await thrown(fx.client.pauseTasks({ tag: 'a', name_prefix: 'b' } as never));
    expect(both).toBeInstanceOf(XcronValidationError);
    expect(both.code).toBe(1000);
    expect(both.message).toMatch(/exactly one selector/);
    const badTag = await thrown(fx.client.deleteTasks({ tag: 'no spaces allowed' }));
    expect(badTag).toBeInstanceOf(XcronValidationError);
    expect(badTag.message).toMatch(/tag/);
    const badLast = await thrown(fx.client.listTasks({ last_status: 'NOPE' as never }));
    expect(badLast).toBeInstanceOf(XcronValidationError);
    expect(badLast.message).toMatch(/last_status/);
  });
});

describe('runs across tasks, replay and the report', () => {
  it('triggerTask with a one-off body and headers; a FAIL run is in the dead-letter list, retried once, then a conflict', async () => {
    const path = `/flaky-${unique()}`;
    fx.recv.on(path, { status: 500 });
    const name = `replay-${unique()}`;
    const { task_id } = await fx.client.createTask({ type: 1, format: '0 0 1 1 *', name, retry: { max_attempts: 1 }, callback: { url: fx.recv.url(path), body: { from: 'task' } } });

    const trig = await fx.client.triggerTask(task_id, { body: { from: 'trigger' }, headers: { 'X-One-Off': 'yes' } });
    const cb = await fx.recv.waitForRequest((r) => header(r, 'x-xcron-fire-id') === trig.run_id, 20_000, 'the triggered callback');
    expect(JSON.parse(cb.body)).toEqual({ from: 'trigger' });
    expect(header(cb, 'x-one-off')).toBe('yes');

    const dead = await waitUntil(() => fx.client.listRuns({ status: 'FAIL', replayed: false, task_id }), (p) => p.runs.length === 1, 20_000, 'the run recorded FAIL');
    expect(dead.runs[0]).toMatchObject({ run_id: trig.run_id, task_id, task_name: name, status: 'FAIL', http_status: 500 });
    expect(dead.next_cursor).toBeNull();
    expect((await fx.client.listRuns({ name_prefix: name })).runs.map((r) => r.run_id)).toEqual([trig.run_id]);
    expect((await fx.client.listTasks({ last_status: 'FAIL', name })).tasks.map((t) => t.task_id)).toEqual([task_id]);

    expect(await fx.client.retryRuns({ task_id, dry_run: true })).toEqual({ count: 1, run_ids: [trig.run_id], remaining: 0, remaining_capped: false });

    fx.recv.on(path, { status: 200 });
    const retried = await fx.client.retryRun(trig.run_id);
    expect(retried).toMatchObject({ run_id: `${trig.run_id}:r1`, task_id, retry_of: trig.run_id, scheduled_time: expect.any(Number) });
    const again = await fx.recv.waitForRequest((r) => r.path === path && r.arrivedAt > cb.arrivedAt, 20_000, 'the retried callback');
    expect(JSON.parse(again.body)).toEqual({ from: 'trigger' });
    await waitUntil(() => fx.client.listRuns({ task_id, status: 'SUCCESS' }), (p) => p.runs.some((r) => r.run_id === retried.run_id), 20_000, 'the retry recorded SUCCESS');
    expect((await fx.client.listRuns({ status: 'FAIL', replayed: false, task_id })).runs).toEqual([]);
    expect((await fx.client.listRuns({ replayed: true, task_id })).runs.map((r) => r.run_id)).toEqual([trig.run_id]);

    const twice = await thrown(fx.client.retryRun(trig.run_id));
    expect(twice).toBeInstanceOf(XcronConflictError);
    expect(twice.code).toBe(1023);
    const notFailed = await thrown(fx.client.retryRun(retried.run_id));
    expect(notFailed).toBeInstanceOf(XcronConflictError);
    expect(notFailed.code).toBe(1022);
    const missing = await thrown(fx.client.retryRun(`${task_id}:1`));
    expect(missing).toBeInstanceOf(XcronNotFoundError);
    expect(missing.code).toBe(1021);
    await fx.client.deleteTask(task_id);
  });

  it('retryRuns delivers every matching failed run again', async () => {
    const path = `/down-${unique()}`;
    fx.recv.on(path, { status: 503 });
    const { task_id } = await fx.client.createTask({ type: 1, format: '0 0 1 1 *', retry: { max_attempts: 1 }, callback: { url: fx.recv.url(path) } });
    const runIds: string[] = [];
    for (let i = 0; i < 2; i++) runIds.push((await fx.client.triggerTask(task_id)).run_id);
    await waitUntil(() => fx.client.listRuns({ task_id, status: 'FAIL' }), (p) => p.runs.length === 2, 20_000, 'both runs recorded FAIL');
    fx.recv.on(path, { status: 200 });
    const res = await fx.client.retryRuns({ task_id });
    expect(res.count).toBe(2);
    expect([...res.run_ids].sort()).toEqual(runIds.map((id) => `${id}:r1`).sort());
    await waitUntil(() => fx.client.listRuns({ task_id, status: 'SUCCESS' }), (p) => p.runs.length === 2, 20_000, 'both retries recorded SUCCESS');
    expect((await fx.client.retryRuns({ task_id })).count).toBe(0);
    await fx.client.deleteTask(task_id);
  });

  it('iterateRuns and listRunsPages follow the cursor across pages', async () => {
    const path = `/ok-${unique()}`;
    const { task_id } = await fx.client.createTask({ type: 1, format: '0 0 1 1 *', callback: { url: fx.recv.url(path) } });
    const runIds: string[] = [];
    for (let i = 0; i < 3; i++) runIds.push((await fx.client.triggerTask(task_id)).run_id);
    await waitUntil(() => fx.client.listRuns({ task_id, status: 'SUCCESS' }), (p) => p.runs.length === 3, 20_000, 'three runs recorded SUCCESS');

    const seen: string[] = [];
    for await (const r of fx.client.iterateRuns({ task_id, limit: 1 })) seen.push(r.run_id);
    expect(seen).toHaveLength(3);
    expect([...seen].sort()).toEqual([...runIds].sort());
    const pages = [];
    for await (const p of fx.client.listRunsPages({ task_id, limit: 2 })) pages.push(p);
    expect(pages.map((p) => p.runs.length)).toEqual([2, 1]);
    expect(pages[0]!.next_cursor).toEqual(expect.any(String));
    expect(pages[1]!.next_cursor).toBeNull();
    await fx.client.deleteTask(task_id);
  });

  it('report and bad run filters', async () => {
    const rep = await fx.client.report(7);
    expect(rep.days).toHaveLength(7);
    expect(rep.days[6]!.date).toBe(new Date().toISOString().slice(0, 10));
    expect(rep.lateness_bucket_edges_ms.length).toBeGreaterThan(0);
    for (const d of rep.days) expect(d).toMatchObject({ success: expect.any(Number), fail: expect.any(Number), skipped: expect.any(Number), missed: expect.any(Number) });
    expect(rep.days.reduce((n, d) => n + d.success + d.fail, 0)).toBeGreaterThan(0);
    expect((await fx.client.report()).days).toHaveLength(30);

    const badDays = await thrown(fx.client.report(0));
    expect(badDays).toBeInstanceOf(XcronValidationError);
    expect(badDays.code).toBe(1009);
    const badLimit = await thrown(fx.client.listRuns({ limit: 0 }));
    expect(badLimit).toBeInstanceOf(XcronValidationError);
    expect(badLimit.message).toMatch(/limit/);
    const badStatus = await thrown(fx.client.listRuns({ status: 'DONE' as never }));
    expect(badStatus).toBeInstanceOf(XcronValidationError);
    expect(badStatus.message).toMatch(/status/);
  });
});
