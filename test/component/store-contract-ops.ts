/**
 * The TaskStore contract, operator part (src/store/types.ts): tags and the listTasks filters, a
 * manual run's one-off request, commitRetry, runs across tasks (queryRuns) and the daily report's
 * tallies (reportDays). Run by each store's test file next to storeContract, on the same harness.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dayOf, latenessBucket } from '../../src/store/report.js';
import type { FireRequest, RunsQuery, TaskStore } from '../../src/store/types.js';
import { fireId, type Run, type Task } from '../../src/task/index.js';
import { T0, idsInDistinctSlots, makeTask } from './fixtures.js';
import type { StoreHarness } from './store-contract.js';

const MIN = 60_000;
const Q: RunsQuery = { status: null, from: null, to: null, task_id: null, namePrefix: null, replayed: null, before: null, limit: 100 };

export function storeOpsContract(name: string, make: () => Promise<StoreHarness>): void {
  describe(`TaskStore contract, operator features: ${name}`, () => {
    let h: StoreHarness;
    let store: TaskStore;
    beforeEach(async () => {
      h = await make();
      store = h.store;
    });
    afterEach(async () => {
      await h.cleanup();
    });

    const fire = (t: Task, status: FireRequest['run']['status'] = 'PENDING'): FireRequest => ({
      slot: t.slot,
      token: h.token(t.slot),
      task_id: t.id,
      expected: t.next_fire_time!,
      next: t.next_fire_time! + MIN,
      now: t.next_fire_time! + 5,
      run: { run_id: fireId(t.id, t.next_fire_time!), node: 'n', status, error: null },
    });
    /** Commits the task's current tick and finishes the run with `status`, started `late` ms after its tick. */
    const runOnce = async (t: Task, status: 'SUCCESS' | 'FAIL', late = 3): Promise<string> => {
      const cur = (await store.get(t.id))!;
      expect(await store.commitFires([fire(cur)])).toEqual(['committed']);
      const id = fireId(t.id, cur.next_fire_time!);
      const start = cur.next_fire_time! + late;
      await store.updateRuns([{ run_id: id, task_id: t.id, status, attempts: 1, node: 'n', start_time: start, end_time: start + 10, http_status: status === 'SUCCESS' ? 200 : 500, error: null, duration_ms: 10, response_body: null }]);
      return id;
    };
    const ids = (runs: Run[]): string[] => runs.map((r) => r.run_id);

    it('keeps tags; listTasks filters by tag and by last_status', async () => {
      const [a, b, c] = idsInDistinctSlots(3, 'tagged');
      const ta = makeTask({ id: a!, body: { name: 'n-a', tags: ['etl', 'x:y'] } });
      const tb = makeTask({ id: b!, body: { tags: ['etl'] } });
      const tc = makeTask({ id: c! });
      for (const t of [ta, tb, tc]) expect((await store.create(t)).created).toBe(true);
      expect((await store.get(a!))!.tags).toEqual(['etl', 'x:y']);
      expect((await store.get(c!))!.tags).toBeNull();
      const list = async (q: { tag?: string; lastStatus?: string }): Promise<string[]> => (await store.listTasks({ state: null, namePrefix: null, after: null, limit: 100, ...q })).map((t) => t.id).sort();
      expect(await list({ tag: 'etl' })).toEqual([a!, b!].sort());
      expect(await list({ tag: 'x:y' })).toEqual([a!]);
      expect(await list({ tag: 'none' })).toEqual([]);
      await runOnce(tb, 'FAIL');
      await runOnce(tc, 'SUCCESS');
      expect(await list({ lastStatus: 'FAIL' })).toEqual([b!]);
      expect(await list({ lastStatus: 'FAIL', tag: 'x:y' })).toEqual([]);
      const up = await store.updateTask(a!, { tags: null, update_time: T0 + 1 }, { state: 'active', next_fire_time: ta.next_fire_time });
      expect(up).toMatchObject({ tags: null });
      expect(await list({ tag: 'x:y' })).toEqual([]);
    });

    it('a manual run keeps its one-off request; the outbox hands it over', async () => {
      const t = makeTask({ id: 'trig' });
      await store.create(t);
      const request = { body: '{"n":12345678901234567890}', headers: { 'X-A': 'b' } };
      expect(await store.commitTrigger({ slot: t.slot, task_id: t.id, run_id: fireId(t.id, T0 + 7), scheduled_time: T0 + 7, node: 'n', now: T0 + 7, request })).toBe('committed');
      expect(await store.commitTrigger({ slot: t.slot, task_id: t.id, run_id: fireId(t.id, T0 + 8), scheduled_time: T0 + 8, node: 'n', now: T0 + 8 })).toBe('committed');
      expect((await store.getRun(fireId(t.id, T0 + 7)))!.request).toEqual(request);
      expect((await store.getRun(fireId(t.id, T0 + 8)))!.request).toBeNull();
      const out = await store.unfinishedRuns({ slots: null, after: null, limit: 10 });
      expect(out.map((p) => p.run.request)).toEqual([request, null]);
    });

    it('commitRetry: only a finished FAIL run, once; the retry run carries its request and the link', async () => {
      const t = makeTask({ id: 'retry' });
      await store.create(t);
      const orig = fireId(t.id, T0 + 7);
      const request = { body: '{"k":1}', headers: null };
      const retry = (of: string, run_id: string, now = T0 + 100): ReturnType<TaskStore['commitRetry']> => store.commitRetry({ of, run_id, task_id: t.id, slot: t.slot, scheduled_time: now, node: 'n', now });
      expect(await retry(`${t.id}:1`, `${t.id}:1:r1`)).toEqual({ result: 'not_found', run: null });
      await store.commitTrigger({ slot: t.slot, task_id: t.id, run_id: orig, scheduled_time: T0 + 7, node: 'n', now: T0 + 7, request });
      expect((await retry(orig, `${orig}:r1`)).result).toBe('not_failed');
      await store.updateRuns([{ run_id: orig, task_id: t.id, status: 'FAIL', attempts: 1, start_time: T0 + 8, end_time: T0 + 9, error: 'HTTP 500' }]);
      const res = await retry(orig, `${orig}:r1`);
      expect(res.result).toBe('committed');
      expect(res.run).toMatchObject({ run_id: orig, status: 'FAIL', retried_by: `${orig}:r1` });
      expect(await store.getRun(`${orig}:r1`)).toMatchObject({ status: 'PENDING', attempts: 0, scheduled_time: T0 + 100, request, retried_by: null, task_id: t.id });
      expect((await store.get(t.id))!.run_count).toBe(2);
      const again = await retry(orig, `${orig}:r1`, T0 + 200);
      expect(again.result).toBe('retried');
      expect(await store.getRun(`${orig}:r1`)).toMatchObject({ scheduled_time: T0 + 100 });
      expect(ids(await store.listRuns(t.id, 10))).toEqual([`${orig}:r1`, orig]);
      // The retry run is in the outbox for delivery.
      expect((await store.unfinishedRuns({ slots: null, after: null, limit: 10 })).map((p) => p.run.run_id)).toEqual([`${orig}:r1`]);
    });

    it('queryRuns: newest first across tasks and slots, filtered, with a cursor', async () => {
      const [a, b] = idsInDistinctSlots(2, 'runs');
      const ta = makeTask({ id: a!, body: { name: 'billing-1' } });
      const tb = makeTask({ id: b!, body: { name: 'other' } });
      await store.create(ta);
      await store.create(tb);
      const made: string[] = [];
      made.push(await runOnce(ta, 'FAIL'));
      made.push(await runOnce(tb, 'SUCCESS'));
      // The next tick of each: a one minute later.
      made.push(await runOnce((await store.get(a!))!, 'SUCCESS'));
      made.push(await runOnce((await store.get(b!))!, 'FAIL'));
      const pending = fire((await store.get(a!))!);
      await store.commitFires([pending]);
      made.push(pending.run.run_id);
      const all = await store.queryRuns(Q);
      const expected = [...made].sort((x, y) => Number(y.split(':')[1]) - Number(x.split(':')[1]) || (y < x ? -1 : 1));
      expect(ids(all)).toEqual(expected);
      // Pages of 2 with the (scheduled_time, run_id) cursor.
      const paged: string[] = [];
      let before: RunsQuery['before'] = null;
      for (;;) {
        const page = await store.queryRuns({ ...Q, before, limit: 2 });
        paged.push(...ids(page));
        if (page.length < 2) break;
        const last = page[page.length - 1]!;
        before = { time: last.scheduled_time, id: last.run_id };
      }
      expect(paged).toEqual(expected);
      expect(ids(await store.queryRuns({ ...Q, status: 'FAIL' }))).toEqual(expected.filter((r) => [made[0], made[3]].includes(r)));
      expect(ids(await store.queryRuns({ ...Q, status: 'PENDING' }))).toEqual([made[4]]);
      expect(ids(await store.queryRuns({ ...Q, status: 'SUCCESS', task_id: b! }))).toEqual([made[1]]);
      expect(ids(await store.queryRuns({ ...Q, namePrefix: 'bill' }))).toEqual(expected.filter((r) => r.startsWith(`${a}:`)));
      const t1 = all.find((r) => r.run_id === made[0])!.scheduled_time;
      expect(ids(await store.queryRuns({ ...Q, from: t1 + 1, to: t1 + MIN }))).toEqual(expected.filter((r) => [made[2], made[3]].includes(r)));
      await store.commitRetry({ of: made[0]!, run_id: `${made[0]}:r1`, task_id: a!, slot: ta.slot, scheduled_time: T0 + 10 * MIN, node: 'n', now: T0 + 10 * MIN });
      expect(ids(await store.queryRuns({ ...Q, status: 'FAIL', replayed: false }))).toEqual([made[3]]);
      expect(ids(await store.queryRuns({ ...Q, status: 'FAIL', replayed: true }))).toEqual([made[0]]);
      expect(ids(await store.queryRuns({ ...Q, limit: 1 }))).toEqual([`${made[0]}:r1`]);
    });

    it('reportDays: tallies by status and lateness bucket per UTC day, kept when the runs are pruned', async () => {
      const t = makeTask({ id: 'rep' });
      await store.create(t);
      await runOnce(t, 'SUCCESS', 3);
      await runOnce((await store.get('rep'))!, 'SUCCESS', 40);
      await runOnce((await store.get('rep'))!, 'FAIL', 2500);
      const cur = (await store.get('rep'))!;
      expect(await store.commitFires([fire(cur, 'SKIPPED')])).toEqual(['committed']);
      const day = dayOf(T0);
      const expected = { SUCCESS: 2, FAIL: 1, SKIPPED: 1, [`l${latenessBucket(3)}`]: 1, [`l${latenessBucket(40)}`]: 1, [`l${latenessBucket(2500)}`]: 1 };
      expect(await store.reportDays(day - 1, day + 1)).toEqual([{ day, counts: expected }]);
      expect(await store.reportDays(day + 1, day + 2)).toEqual([]);
      expect(await store.pruneRuns(T0 + 1000 * MIN, 0)).toBe(4);
      expect(await store.listRuns('rep', 10)).toEqual([]);
      expect(await store.reportDays(day, day)).toEqual([{ day, counts: expected }]);
    });
  });
}
