/**
 * The TaskStore contract (src/store/types.ts). Every store implementation runs this same suite:
 *
 *   storeContract('sqlite', async () => ({ store, token, invalidate, cleanup }))
 *
 * It tests only what the interface promises, so that a Redis store can run it unchanged. Task
 * slots are derived from task ids (slotOf, 256 slots) as the API derives them.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DueKey, DueQuery, FireRequest, TaskStore } from '../../src/store/types.js';
import { fireId, type Task } from '../../src/task/index.js';
import { T0, idsInDistinctSlots, makeTask, oneShot } from './fixtures.js';

export interface StoreHarness {
  store: TaskStore;
  /** The current fencing token for a slot. */
  token(slot: number): number;
  /** Makes the tokens handed out so far stale (another owner took over); token() then returns the new ones. */
  invalidate(): Promise<void>;
  cleanup(): Promise<void>;
}

const MIN = 60_000;

export interface ContractOptions {
  /** The store implements the optional uncommitFire (fires committed ahead can be undone). */
  uncommit?: boolean;
  /** The store offers the optional heldFires capability (a store shared by nodes). */
  claims?: boolean;
}

export function storeContract(name: string, make: () => Promise<StoreHarness>, opts: ContractOptions = {}): void {
  describe(`TaskStore contract: ${name}`, () => {
    let h: StoreHarness;
    let store: TaskStore;

    beforeEach(async () => {
      h = await make();
      store = h.store;
    });
    afterEach(async () => {
      await h.cleanup();
    });

    /** A fire request for the task's current tick. */
    const fire = (t: Task, over: Partial<FireRequest> = {}, run: Partial<FireRequest['run']> = {}): FireRequest => {
      const expected = over.expected ?? t.next_fire_time!;
      return {
        slot: t.slot,
        token: h.token(t.slot),
        task_id: t.id,
        expected,
        next: expected + MIN,
        now: expected + 5,
        ...over,
        run: { run_id: fireId(t.id, expected), node: 'node-a', status: 'PENDING', error: null, ...run },
      };
    };

    const createAll = async (tasks: Task[]): Promise<void> => {
      for (const t of tasks) expect((await store.create(t)).created).toBe(true);
    };

    // ------------------------------------------------------------ create / get / delete

    describe('create, get, delete', () => {
      it('create then get returns the same task', async () => {
        const t = makeTask({ id: 'task-a', body: { name: 'nightly', timezone: 'Asia/Shanghai', retry: { max_attempts: 5 }, overlap: 'skip', misfire: 'skip', callback: { url: 'https://example.com/x', body: { k: [1, 'two'] }, method: 'PUT', headers: { 'X-A': 'b' } } } });
        const r = await store.create(t);
        expect(r.created).toBe(true);
        expect(r.task).toEqual(t);
        expect(await store.get('task-a')).toEqual(t);
      });

      it('get of an unknown id is null', async () => {
        expect(await store.get('nope')).toBeNull();
      });

      it('keeps one-shot and paused tasks as given', async () => {
        const a = oneShot('one-shot', T0 + 5000);
        const b = makeTask({ id: 'paused', state: 'paused' });
        await createAll([a, b]);
        expect(await store.get('one-shot')).toEqual(a);
        expect((await store.get('paused'))!.state).toBe('paused');
      });

      it('delete returns the task, removes it and its runs', async () => {
        const t = makeTask({ id: 'doomed' });
        await createAll([t]);
        expect(await store.commitFires([fire(t)])).toEqual(['committed']);
        const runId = fireId(t.id, t.next_fire_time!);
        expect(await store.getRun(runId)).not.toBeNull();

        const deleted = await store.delete('doomed');
        expect(deleted?.id).toBe('doomed');
        expect(await store.get('doomed')).toBeNull();
        expect(await store.getRun(runId)).toBeNull();
        expect(await store.listRuns('doomed', 10)).toEqual([]);
        expect(await store.unfinishedRuns({ slots: null, after: null, limit: 100 })).toEqual([]);
        expect(await store.dueTasks({ slots: null, after: null, upTo: T0 + 100 * MIN, limit: 100 })).toEqual([]);
      });

      it('delete of an unknown id is null', async () => {
        expect(await store.delete('nope')).toBeNull();
      });

      it('deleting one task leaves the others and their runs', async () => {
        const a = makeTask({ id: 'keep' });
        const b = makeTask({ id: 'drop' });
        await createAll([a, b]);
        expect(await store.commitFires([fire(a), fire(b)])).toEqual(['committed', 'committed']);
        await store.delete('drop');
        expect(await store.get('keep')).not.toBeNull();
        expect(await store.listRuns('keep', 10)).toHaveLength(1);
      });

      it('an idempotency key returns the existing task with created=false', async () => {
        const first = makeTask({ id: 'first', body: { idempotency_key: 'order-42' } });
        const second = makeTask({ id: 'second', format: '0 * * * *', body: { idempotency_key: 'order-42' } });
        const r1 = await store.create(first);
        const r2 = await store.create(second);
        expect(r1.created).toBe(true);
        expect(r2.created).toBe(false);
        expect(r2.task).toEqual(first);
        expect(await store.get('second')).toBeNull();
      });

      it('tasks without an idempotency key never collide', async () => {
        await createAll([makeTask({ id: 'x1' }), makeTask({ id: 'x2' })]);
        expect(await store.get('x1')).not.toBeNull();
        expect(await store.get('x2')).not.toBeNull();
      });

      it('the idempotency key is freed when its task is deleted', async () => {
        await createAll([makeTask({ id: 'k1', body: { idempotency_key: 'k' } })]);
        await store.delete('k1');
        const r = await store.create(makeTask({ id: 'k2', body: { idempotency_key: 'k' } }));
        expect(r.created).toBe(true);
        expect(r.task.id).toBe('k2');
      });
    });

    // ------------------------------------------------------------ dueTasks

    describe('dueTasks', () => {
      // ids chosen so that time order and id order disagree, with ties on time
      const times: [string, number][] = [
        ['d', T0 + 3000],
        ['a', T0 + 2000],
        ['c', T0 + 1000],
        ['b', T0 + 1000],
        ['e', T0 + 2000],
        ['f', T0 + 4000],
      ];
      const ORDER = ['b', 'c', 'a', 'e', 'd', 'f'];
      const seed = () => createAll(times.map(([id, at]) => makeTask({ id, next_fire_time: at })));

      it('orders by (next_fire_time, id)', async () => {
        await seed();
        const rows = await store.dueTasks({ slots: null, after: null, upTo: T0 + 10_000, limit: 100 });
        expect(rows.map((t) => t.id)).toEqual(ORDER);
        expect(rows.map((t) => t.next_fire_time)).toEqual([...rows.map((t) => t.next_fire_time!)].sort((x, y) => x - y));
      });

      it('returns full tasks', async () => {
        await seed();
        const [first] = await store.dueTasks({ slots: null, after: null, upTo: T0 + 10_000, limit: 1 });
        expect(first).toEqual(await store.get('b'));
      });

      it('pages with the exclusive `after` key, ties included', async () => {
        await seed();
        const seen: string[] = [];
        let after: { time: number; id: string } | null = null;
        for (let i = 0; i < 10; i++) {
          const page = await store.dueTasks({ slots: null, after, upTo: T0 + 10_000, limit: 2 });
          seen.push(...page.map((t) => t.id));
          if (page.length < 2) break;
          const last = page[page.length - 1]!;
          after = { time: last.next_fire_time!, id: last.id };
        }
        expect(seen).toEqual(ORDER);
      });

      it('`after` in the middle of a tie', async () => {
        await seed();
        const rows = await store.dueTasks({ slots: null, after: { time: T0 + 2000, id: 'a' }, upTo: T0 + 10_000, limit: 100 });
        expect(rows.map((t) => t.id)).toEqual(['e', 'd', 'f']);
      });

      it('`upTo` is an inclusive bound', async () => {
        await seed();
        expect((await store.dueTasks({ slots: null, after: null, upTo: T0 + 2000, limit: 100 })).map((t) => t.id)).toEqual(['b', 'c', 'a', 'e']);
        expect((await store.dueTasks({ slots: null, after: null, upTo: T0 + 1999, limit: 100 })).map((t) => t.id)).toEqual(['b', 'c']);
        expect(await store.dueTasks({ slots: null, after: null, upTo: T0 + 999, limit: 100 })).toEqual([]);
      });

      it('includes overdue tasks (next fire time in the past)', async () => {
        await createAll([makeTask({ id: 'old', next_fire_time: T0 - 86_400_000 })]);
        expect((await store.dueTasks({ slots: null, after: null, upTo: T0, limit: 10 })).map((t) => t.id)).toEqual(['old']);
      });

      it('honours `limit`', async () => {
        await seed();
        expect(await store.dueTasks({ slots: null, after: null, upTo: T0 + 10_000, limit: 3 })).toHaveLength(3);
      });

      it('filters by slot', async () => {
        const ids = idsInDistinctSlots(3);
        const tasks = ids.map((id, i) => makeTask({ id, next_fire_time: T0 + i }));
        await createAll(tasks);
        const [t0, t1, t2] = tasks as [Task, Task, Task];
        expect((await store.dueTasks({ slots: [t1.slot], after: null, upTo: T0 + 10, limit: 10 })).map((t) => t.id)).toEqual([t1.id]);
        expect((await store.dueTasks({ slots: [t2.slot, t0.slot], after: null, upTo: T0 + 10, limit: 10 })).map((t) => t.id)).toEqual([t0.id, t2.id]);
        expect(await store.dueTasks({ slots: [], after: null, upTo: T0 + 10, limit: 10 })).toEqual([]);
        expect(await store.dueTasks({ slots: null, after: null, upTo: T0 + 10, limit: 10 })).toHaveLength(3);
      });

      it('returns only active tasks', async () => {
        await createAll([
          makeTask({ id: 'active', next_fire_time: T0 + 1 }),
          makeTask({ id: 'paused', next_fire_time: T0 + 1, state: 'paused' }),
          makeTask({ id: 'done', next_fire_time: null, state: 'completed' }),
        ]);
        expect((await store.dueTasks({ slots: null, after: null, upTo: T0 + 10, limit: 10 })).map((t) => t.id)).toEqual(['active']);
      });
    });

    // ------------------------------------------------------------ dueKeys

    describe('dueKeys', () => {
      it('answers the keys of what dueTasks answers, for every query shape (order, ties, paging, upTo, slots, limit, states)', async () => {
        const ids = idsInDistinctSlots(4);
        await createAll([
          ...['d', 'a', 'c', 'b', 'e', 'f'].map((id, i) => makeTask({ id, next_fire_time: T0 + 1000 * [3, 2, 1, 1, 2, 4][i]! })),
          ...ids.map((id, i) => makeTask({ id, next_fire_time: T0 + 2000 + (i % 2) })),
          makeTask({ id: 'old', next_fire_time: T0 - 86_400_000 }),
          makeTask({ id: 'paused', next_fire_time: T0 + 1, state: 'paused' }),
          makeTask({ id: 'done', next_fire_time: null, state: 'completed' }),
        ]);
        const slotsOf = async (xs: string[]): Promise<number[]> => (await Promise.all(xs.map((id) => store.get(id)))).map((t) => t!.slot);
        const queries: DueQuery[] = [
          { slots: null, after: null, upTo: T0 + 10_000, limit: 100 },
          { slots: null, after: null, upTo: T0 + 1999, limit: 100 },
          { slots: null, after: null, upTo: T0 + 10_000, limit: 3 },
          { slots: null, after: { time: T0 + 2000, id: 'a' }, upTo: T0 + 10_000, limit: 100 },
          { slots: null, after: { time: T0 + 1000, id: 'zz' }, upTo: T0 + 10_000, limit: 4 },
          { slots: await slotsOf([ids[1]!, ids[3]!]), after: null, upTo: T0 + 10_000, limit: 100 },
          { slots: [], after: null, upTo: T0 + 10_000, limit: 100 },
          { slots: null, after: null, upTo: T0 - 1, limit: 10 },
        ];
        for (const q of queries) {
          const tasks = await store.dueTasks(q);
          expect(await store.dueKeys(q), JSON.stringify(q)).toEqual(tasks.map((t) => ({ time: t.next_fire_time!, id: t.id })));
        }
        // paging with the last key as the cursor walks every due task once, in order
        const seen: string[] = [];
        let after: DueKey | null = null;
        for (let i = 0; i < 20; i++) {
          const page: DueKey[] = await store.dueKeys({ slots: null, after, upTo: T0 + 10_000, limit: 2 });
          seen.push(...page.map((k) => k.id));
          if (page.length < 2) break;
          after = page[page.length - 1]!;
        }
        expect(seen).toEqual((await store.dueTasks({ slots: null, after: null, upTo: T0 + 10_000, limit: 100 })).map((t) => t.id));
        expect(seen).toHaveLength(11);
      });
    });

    // ------------------------------------------------------------ commitFires

    describe('commitFires', () => {
      it('committed: advances next_fire_time, counts the run, writes it PENDING as <task>:<tick>', async () => {
        const t = makeTask({ id: 'p' });
        await createAll([t]);
        const tick = t.next_fire_time!;
        expect(await store.commitFires([fire(t, { next: tick + MIN, now: tick + 7 })])).toEqual(['committed']);

        const after = (await store.get('p'))!;
        expect(after.next_fire_time).toBe(tick + MIN);
        expect(after.run_count).toBe(1);
        expect(after.last_fire_time).toBe(tick);
        expect(after.state).toBe('active');

        const run = await store.getRun(`p:${tick}`);
        expect(run).toMatchObject({ run_id: `p:${tick}`, task_id: 'p', slot: t.slot, node: 'node-a', scheduled_time: tick, status: 'PENDING', attempts: 0 });
        expect(run!.end_time).toBeNull();
      });

      it('the same tick twice: the second is a conflict and writes no second run', async () => {
        const t = makeTask({ id: 'twice' });
        await createAll([t]);
        expect(await store.commitFires([fire(t)])).toEqual(['committed']);
        expect(await store.commitFires([fire(t)])).toEqual(['conflict']);
        expect((await store.get('twice'))!.run_count).toBe(1);
        expect(await store.listRuns('twice', 10)).toHaveLength(1);
      });

      it('a retry of a commit that stands already answers committed again, once, and changes nothing', async () => {
        const t = makeTask({ id: 'retried' });
        const o = oneShot('retried-once', T0 + 40_000);
        await createAll([t, o]);
        const tick = t.next_fire_time!;
        // The first call went through, but its caller got no usable answer (a lost reply, or too
        // few replica confirmations): it asks again with the same fire, marked as a retry.
        expect(await store.commitFires([fire(t), fire(o, { next: null })])).toEqual(['committed', 'committed']);
        const task1 = await store.get('retried');
        const run1 = await store.getRun(fireId('retried', tick));
        expect(await store.commitFires([fire(t, { retry: true }), fire(o, { next: null, retry: true })])).toEqual(['committed', 'committed']);
        expect(await store.get('retried')).toEqual(task1);
        expect(await store.getRun(fireId('retried', tick))).toEqual(run1);
        expect(await store.listRuns('retried', 10)).toHaveLength(1);
        expect((await store.get('retried-once'))!).toMatchObject({ state: 'completed', run_count: 1 });
        expect(await store.listRuns('retried-once', 10)).toHaveLength(1);
        // Without the retry mark it is the plain conflict of a tick fired twice.
        expect(await store.commitFires([fire(t)])).toEqual(['conflict']);
      });

      it('a retry that does not match the standing commit exactly is a conflict', async () => {
        const t = makeTask({ id: 'other' });
        await createAll([t]);
        const tick = t.next_fire_time!;
        expect(await store.commitFires([fire(t)])).toEqual(['committed']);
        const after = await store.get('other');
        // another node's commit, another next tick, another status: not this caller's commit
        expect(await store.commitFires([fire(t, { retry: true }, { node: 'node-b' })])).toEqual(['conflict']);
        expect(await store.commitFires([fire(t, { retry: true, next: tick + 2 * MIN })])).toEqual(['conflict']);
        expect(await store.commitFires([fire(t, { retry: true }, { status: 'MISSED', error: 'late' })])).toEqual(['conflict']);
        // a retry of a tick never committed is a plain commit
        expect(await store.commitFires([fire(after!, { retry: true })])).toEqual(['committed']);
        expect((await store.get('other'))!.run_count).toBe(2);
        // a later tick committed since: the earlier one's retry is a conflict
        expect(await store.commitFires([fire(t, { retry: true })])).toEqual(['conflict']);
        expect(await store.listRuns('other', 10)).toHaveLength(2);
      });

      it('a wrong expected tick is a conflict and changes nothing', async () => {
        const t = makeTask({ id: 'wrong' });
        await createAll([t]);
        expect(await store.commitFires([fire(t, { expected: t.next_fire_time! + MIN })])).toEqual(['conflict']);
        expect(await store.get('wrong')).toEqual(t);
        expect(await store.listRuns('wrong', 10)).toEqual([]);
      });

      it('an unknown task is a conflict', async () => {
        const ghost = makeTask({ id: 'ghost' });
        expect(await store.commitFires([fire(ghost)])).toEqual(['conflict']);
        expect(await store.getRun(fireId('ghost', ghost.next_fire_time!))).toBeNull();
      });

      it('a paused task is a conflict', async () => {
        const t = makeTask({ id: 'paused', state: 'paused' });
        await createAll([t]);
        expect(await store.commitFires([fire(t)])).toEqual(['conflict']);
        expect((await store.get('paused'))!.run_count).toBe(0);
      });

      it('next = null completes the task (one-shot)', async () => {
        const at = T0 + 30_000;
        const t = oneShot('once', at);
        await createAll([t]);
        expect(await store.commitFires([fire(t, { next: null })])).toEqual(['committed']);
        const done = (await store.get('once'))!;
        expect(done.state).toBe('completed');
        expect(done.next_fire_time).toBeNull();
        expect(done.run_count).toBe(1);
        expect(done.last_fire_time).toBe(at);
        expect((await store.getRun(`once:${at}`))!.status).toBe('PENDING');
        expect(await store.dueTasks({ slots: null, after: null, upTo: at + 86_400_000, limit: 10 })).toEqual([]);
        // and it cannot fire again
        expect(await store.commitFires([fire(t, { next: null })])).toEqual(['conflict']);
      });

      it.each(['MISSED', 'SKIPPED'] as const)('%s is recorded final, not counted, and the tick still advances', async (status) => {
        const t = makeTask({ id: `policy-${status}` });
        await createAll([t]);
        const tick = t.next_fire_time!;
        const reason = `${status.toLowerCase()} by policy`;
        expect(await store.commitFires([fire(t, { now: tick + 10 }, { status, error: reason })])).toEqual(['committed']);

        const after = (await store.get(t.id))!;
        expect(after.run_count).toBe(0);
        expect(after.next_fire_time).toBe(tick + MIN);
        expect(after.last_status).toBe(status);
        const run = (await store.getRun(fireId(t.id, tick)))!;
        expect(run.status).toBe(status);
        expect(run.error).toBe(reason);
        expect(run.end_time).not.toBeNull();
        // final: not in the outbox, and a late RUNNING does not reopen it
        expect(await store.unfinishedRuns({ slots: null, after: null, limit: 10 })).toEqual([]);
        await store.updateRuns([{ run_id: run.run_id, task_id: t.id, status: 'RUNNING', attempts: 1 }]);
        expect((await store.getRun(run.run_id))!.status).toBe(status);
      });

      it('a stale token is fenced and changes nothing; the new token commits', async () => {
        const t = makeTask({ id: 'fenced' });
        await createAll([t]);
        const stale = h.token(t.slot);
        await h.invalidate();
        expect(await store.commitFires([fire(t, { token: stale })])).toEqual(['fenced']);
        expect(await store.get('fenced')).toEqual(t);
        expect(await store.listRuns('fenced', 10)).toEqual([]);

        const fresh = h.token(t.slot);
        expect(fresh).not.toBe(stale);
        expect(await store.commitFires([fire(t, { token: fresh })])).toEqual(['committed']);
      });

      it('a batch of many fires commits in one call with results in request order', async () => {
        const tasks = Array.from({ length: 60 }, (_, i) => makeTask({ id: `batch-${String(i).padStart(2, '0')}`, next_fire_time: T0 + 1000 }));
        const paused = makeTask({ id: 'batch-paused', next_fire_time: T0 + 1000, state: 'paused' });
        await createAll([...tasks, paused]);
        const first = tasks[0]!;
        const reqs: FireRequest[] = [
          ...tasks.slice(0, 30).map((t) => fire(t)),
          fire(first), // same tick again in the same batch: the first one moved it
          fire(tasks[30]!, { expected: T0 + 999 }), // wrong tick
          fire(makeTask({ id: 'batch-ghost', next_fire_time: T0 + 1000 })), // unknown
          fire(paused), // not active
          ...tasks.slice(30).map((t) => fire(t)),
        ];
        const results = await store.commitFires(reqs);
        expect(results).toEqual([
          ...Array<string>(30).fill('committed'),
          'conflict',
          'conflict',
          'conflict',
          'conflict',
          ...Array<string>(30).fill('committed'),
        ]);
        for (const t of tasks) {
          const got = (await store.get(t.id))!;
          expect(got.run_count).toBe(1);
          expect(got.next_fire_time).toBe(T0 + 1000 + MIN);
        }
        expect((await store.unfinishedRuns({ slots: null, after: null, limit: 1000 })).length).toBe(60);
      });

      it('a batch mixing stale and current tokens: only the stale requests are fenced', async () => {
        const [a, b, c] = ['mix-a', 'mix-b', 'mix-c'].map((id) => makeTask({ id, next_fire_time: T0 + 1000 })) as [Task, Task, Task];
        await createAll([a, b, c]);
        const staleA = h.token(a.slot);
        const staleB = h.token(b.slot);
        await h.invalidate();
        const results = await store.commitFires([fire(a, { token: staleA }), fire(c), fire(b, { token: staleB })]);
        expect(results).toEqual(['fenced', 'committed', 'fenced']);
        expect((await store.get('mix-a'))!.run_count).toBe(0);
        expect((await store.get('mix-c'))!.run_count).toBe(1);
      });

      it('an empty batch returns an empty result', async () => {
        expect(await store.commitFires([])).toEqual([]);
      });

      it('successive ticks keep counting', async () => {
        const t = makeTask({ id: 'seq' });
        await createAll([t]);
        let tick = t.next_fire_time!;
        for (let i = 0; i < 5; i++) {
          expect(await store.commitFires([fire(t, { expected: tick, next: tick + MIN })])).toEqual(['committed']);
          tick += MIN;
        }
        const got = (await store.get('seq'))!;
        expect(got.run_count).toBe(5);
        expect(got.next_fire_time).toBe(tick);
        expect(got.last_fire_time).toBe(tick - MIN);
        expect(await store.listRuns('seq', 100)).toHaveLength(5);
      });
    });

    // ------------------------------------------------------------ runs

    describe('uncommitFire (fires committed ahead of their due time)', () => {
      if (!opts.uncommit) {
        it('is not offered: a scheduler on this store commits every fire at its due time', () => {
          expect(store.uncommitFire).toBeUndefined();
        });
        return;
      }
      const undo = (t: Task, tick: number, next: number | null, last: number | null) => store.uncommitFire!({ task_id: t.id, run_id: fireId(t.id, tick), tick, next, last_fire_time: last });

      it('a one-shot: the run is removed, the task is active again at its tick, counts restored', async () => {
        const t = oneShot('os', T0 + 5000);
        await createAll([t]);
        const tick = t.next_fire_time!;
        expect(await store.commitFires([fire(t, { next: null, now: tick - 800 })])).toEqual(['committed']);
        expect(await store.get('os')).toMatchObject({ state: 'completed', next_fire_time: null, run_count: 1 });
        expect((await store.stats()).tasks).toMatchObject({ active: 0, completed: 1 });

        expect(await undo(t, tick, null, null)).toBe(true);
        expect(await store.get('os')).toMatchObject({ state: 'active', next_fire_time: tick, run_count: 0, last_fire_time: null });
        expect(await store.getRun(fireId('os', tick))).toBeNull();
        expect(await store.unfinishedRuns({ slots: null, after: null, limit: 10 })).toEqual([]);
        expect((await store.stats()).tasks).toMatchObject({ active: 1, completed: 0 });
        expect((await store.dueTasks({ slots: null, after: null, upTo: tick, limit: 10 })).map((x) => x.id)).toEqual(['os']);
        // and the tick can be committed again, once
        expect(await store.commitFires([fire(t, { next: null })])).toEqual(['committed']);
        expect(await store.commitFires([fire(t, { next: null })])).toEqual(['conflict']);
      });

      it('a periodic task: next_fire_time and last_fire_time go back', async () => {
        const t = makeTask({ id: 'per' });
        await createAll([t]);
        const tick = t.next_fire_time!;
        expect(await store.commitFires([fire(t)])).toEqual(['committed']);
        const t2 = (await store.get('per'))!;
        expect(await store.commitFires([fire(t2, { next: tick + 2 * MIN })])).toEqual(['committed']);
        // undo the second one: last_fire_time returns to the first tick
        expect(await undo(t2, tick + MIN, tick + 2 * MIN, tick)).toBe(true);
        expect(await store.get('per')).toMatchObject({ state: 'active', next_fire_time: tick + MIN, run_count: 1, last_fire_time: tick });
        expect((await store.listRuns('per', 10)).map((r) => r.run_id)).toEqual([fireId('per', tick)]);
      });

      it('refused, changing nothing, once the delivery started (RUNNING or an attempt recorded)', async () => {
        const t = oneShot('busy', T0 + 5000);
        await createAll([t]);
        const tick = t.next_fire_time!;
        expect(await store.commitFires([fire(t, { next: null })])).toEqual(['committed']);
        await store.updateRuns([{ run_id: fireId('busy', tick), task_id: 'busy', status: 'RUNNING', attempts: 1, node: 'node-a', start_time: tick }]);
        expect(await undo(t, tick, null, null)).toBe(false);
        expect(await store.get('busy')).toMatchObject({ state: 'completed', run_count: 1 });
        expect(await store.getRun(fireId('busy', tick))).toMatchObject({ status: 'RUNNING' });
      });

      it('refused, changing nothing, when the task moved on after the commit (the run stays)', async () => {
        const t = makeTask({ id: 'moved' });
        await createAll([t]);
        const tick = t.next_fire_time!;
        expect(await store.commitFires([fire(t)])).toEqual(['committed']);
        const t2 = (await store.get('moved'))!;
        expect(await store.commitFires([fire(t2, { next: tick + 2 * MIN })])).toEqual(['committed']);
        // undoing the first tick now: the task no longer shows that commit
        expect(await undo(t, tick, tick + MIN, null)).toBe(false);
        expect(await store.get('moved')).toMatchObject({ next_fire_time: tick + 2 * MIN, run_count: 2, last_fire_time: tick + MIN });
        expect(await store.getRun(fireId('moved', tick))).toMatchObject({ status: 'PENDING' });
      });

      it('an unknown run or task is refused', async () => {
        const t = oneShot('nobody', T0 + 5000);
        expect(await undo(t, t.next_fire_time!, null, null)).toBe(false);
      });
    });

    describe('heldFires: claimFires and uncommitHeld (fires committed ahead, undone from any node)', () => {
      if (!opts.claims) {
        it('are not offered', () => {
          expect(store.heldFires).toBeUndefined();
        });
        return;
      }
      const heldOf = (t: Task | null) => (t ? (store.heldFires!.heldOf(t) ?? undefined) : undefined);
      const claim = (t: Task, tick: number, token: number | null = h.token(t.slot), node = 'node-a') => store.heldFires!.claimFires([{ slot: t.slot, token, task_id: t.id, run_id: fireId(t.id, tick) }], node);
      const claimerOf = async (runId: string) => {
        const run = await store.getRun(runId);
        return run ? (store.heldFires!.claimedBy(run) ?? undefined) : undefined;
      };

      it('a one-shot committed ahead is held: uncommitHeld removes the run and restores the task; a claim then answers undone', async () => {
        const t = oneShot('held-os', T0 + 5000);
        await createAll([t]);
        const tick = t.next_fire_time!;
        expect(await store.commitFires([fire(t, { next: null, now: tick - 800, ahead: true })])).toEqual(['committed']);
        const stored = await store.get('held-os');
        expect(stored).toMatchObject({ state: 'completed', next_fire_time: null, run_count: 1, last_fire_time: tick });
        expect(heldOf(stored)).toEqual({ run_id: fireId('held-os', tick), tick, last_fire_time: null });
        // the marker is never a task field (export, import and the API never see it)
        expect(Object.keys(stored!)).not.toContain('h_run');
        expect(JSON.stringify(stored)).not.toContain('h_run');

        expect(await store.heldFires!.uncommitHeld('held-os')).toBe(true);
        const back = await store.get('held-os');
        expect(back).toMatchObject({ state: 'active', next_fire_time: tick, run_count: 0, last_fire_time: null });
        expect(heldOf(back)).toBeUndefined();
        expect(await store.getRun(fireId('held-os', tick))).toBeNull();
        expect((await store.stats()).tasks).toMatchObject({ active: 1, completed: 0 });
        expect((await store.dueTasks({ slots: null, after: null, upTo: tick, limit: 10 })).map((x) => x.id)).toEqual(['held-os']);
        expect(await claim(t, tick)).toEqual(['undone']);
        expect(await store.heldFires!.uncommitHeld('held-os')).toBe(false);
        // committed again (once), claimed, delivered
        expect(await store.commitFires([fire(t, { next: null, now: tick - 100, ahead: true })])).toEqual(['committed']);
        expect(await store.commitFires([fire(t, { next: null, now: tick - 100, ahead: true })])).toEqual(['conflict']);
        expect(await claim(t, tick)).toEqual(['claimed']);
        expect(await store.getRun(fireId('held-os', tick))).toMatchObject({ status: 'PENDING', attempts: 0 });
      });

      it('a retried commit ahead stays held; retried after its due time it is a plain commit, no longer undoable', async () => {
        const a = oneShot('retry-held', T0 + 5000);
        const b = oneShot('retry-late', T0 + 6000);
        await createAll([a, b]);
        const ta = a.next_fire_time!;
        const tb = b.next_fire_time!;
        expect(await store.commitFires([fire(a, { next: null, now: ta - 800, ahead: true }), fire(b, { next: null, now: tb - 800, ahead: true })])).toEqual(['committed', 'committed']);
        // still ahead: held as before (undoable, claimable)
        expect(await store.commitFires([fire(a, { next: null, now: ta - 700, ahead: true, retry: true })])).toEqual(['committed']);
        expect(heldOf(await store.get('retry-held'))).toEqual({ run_id: fireId('retry-held', ta), tick: ta, last_fire_time: null });
        expect(await claim(a, ta)).toEqual(['claimed']);
        // retried after its due time (not ahead): sent at once, so no longer undoable by another node
        expect(await store.commitFires([fire(b, { next: null, now: tb + 50, retry: true })])).toEqual(['committed']);
        expect(heldOf(await store.get('retry-late'))).toBeUndefined();
        expect(await store.heldFires!.uncommitHeld('retry-late')).toBe(false);
        expect(await store.getRun(fireId('retry-late', tb))).toMatchObject({ status: 'PENDING', attempts: 0 });
        // another token (the slot moved and came back): not this caller's commit
        const stale = h.token(a.slot);
        await h.invalidate();
        expect(h.token(a.slot)).not.toBe(stale);
        expect(await store.commitFires([fire(b, { next: null, now: tb + 60, retry: true, token: h.token(b.slot) })])).toEqual(['conflict']);
      });

      it('a claim wins against a later undo, and claiming again answers the same', async () => {
        const t = makeTask({ id: 'held-claimed' });
        await createAll([t]);
        const tick = t.next_fire_time!;
        expect(await store.commitFires([fire(t, { now: tick - 800, ahead: true })])).toEqual(['committed']);
        expect(await claimerOf(fireId('held-claimed', tick))).toBeUndefined();
        expect(await claim(t, tick)).toEqual(['claimed']);
        expect(heldOf(await store.get('held-claimed'))).toBeUndefined();
        // the claimer is recorded on the run (not a Run field), and given back only by that node
        expect(await claimerOf(fireId('held-claimed', tick))).toBe('node-a');
        expect(Object.keys((await store.getRun(fireId('held-claimed', tick)))!)).not.toContain('claimed_by');
        await store.heldFires!.releaseClaims([fireId('held-claimed', tick)], 'node-b');
        expect(await claimerOf(fireId('held-claimed', tick))).toBe('node-a');
        await store.heldFires!.releaseClaims([fireId('held-claimed', tick)], 'node-a');
        expect(await claimerOf(fireId('held-claimed', tick))).toBeUndefined();
        expect((await store.unfinishedRuns({ slots: null, after: null, limit: 10 })).map((p) => p.run.run_id)).toEqual([fireId('held-claimed', tick)]);
        expect(await store.heldFires!.uncommitHeld('held-claimed')).toBe(false);
        expect(await store.get('held-claimed')).toMatchObject({ next_fire_time: tick + MIN, run_count: 1, last_fire_time: tick });
        expect(await claim(t, tick)).toEqual(['claimed']);
      });

      it('a periodic task: undo restores its tick and the last_fire_time before the commit', async () => {
        const t = makeTask({ id: 'held-per' });
        await createAll([t]);
        const tick = t.next_fire_time!;
        expect(await store.commitFires([fire(t)])).toEqual(['committed']);
        const t2 = (await store.get('held-per'))!;
        expect(heldOf(t2)).toBeUndefined(); // committed at its due time: nothing to undo
        expect(await store.heldFires!.uncommitHeld('held-per')).toBe(false);
        expect(await store.commitFires([fire(t2, { next: tick + 2 * MIN, now: tick + MIN - 500, ahead: true })])).toEqual(['committed']);
        expect(heldOf(await store.get('held-per'))).toEqual({ run_id: fireId('held-per', tick + MIN), tick: tick + MIN, last_fire_time: tick });
        expect(await store.heldFires!.uncommitHeld('held-per')).toBe(true);
        expect(await store.get('held-per')).toMatchObject({ state: 'active', next_fire_time: tick + MIN, run_count: 1, last_fire_time: tick });
        expect((await store.listRuns('held-per', 10)).map((r) => r.run_id)).toEqual([fireId('held-per', tick)]);
      });

      it('a claim with a stale token, or none, is fenced and changes nothing', async () => {
        const t = oneShot('held-fenced', T0 + 5000);
        await createAll([t]);
        const tick = t.next_fire_time!;
        expect(await store.commitFires([fire(t, { next: null, now: tick - 800, ahead: true })])).toEqual(['committed']);
        const stale = h.token(t.slot);
        await h.invalidate();
        expect(await claim(t, tick, stale)).toEqual(['fenced']);
        expect(await claim(t, tick, null)).toEqual(['fenced']);
        expect(heldOf(await store.get('held-fenced'))?.run_id).toBe(fireId('held-fenced', tick));
        // the new owner's claim goes through
        expect(await claim(t, tick)).toEqual(['claimed']);
      });

      it('no undo once an attempt started, or after the task was changed; an update clears the marker', async () => {
        const a = oneShot('held-busy', T0 + 5000);
        const b = oneShot('held-upd', T0 + 5000);
        await createAll([a, b]);
        const tick = a.next_fire_time!;
        expect(await store.commitFires([fire(a, { next: null, now: tick - 800, ahead: true }), fire(b, { next: null, now: tick - 800, ahead: true })])).toEqual(['committed', 'committed']);
        await store.updateRuns([{ run_id: fireId('held-busy', tick), task_id: 'held-busy', status: 'RUNNING', attempts: 1, node: 'node-a', start_time: tick }]);
        expect(await store.heldFires!.uncommitHeld('held-busy')).toBe(false);
        expect(await store.get('held-busy')).toMatchObject({ state: 'completed', run_count: 1 });
        expect(await store.getRun(fireId('held-busy', tick))).toMatchObject({ status: 'RUNNING' });

        const cur = (await store.get('held-upd'))!;
        expect(await store.updateTask('held-upd', { name: 'renamed', update_time: tick - 700 }, { state: cur.state, next_fire_time: cur.next_fire_time })).toMatchObject({ name: 'renamed' });
        expect(heldOf(await store.get('held-upd'))).toBeUndefined();
        expect(await store.heldFires!.uncommitHeld('held-upd')).toBe(false);
        expect(await claim(b, tick)).toEqual(['claimed']);
      });

      it('deleting the task removes the held run: its claim answers undone', async () => {
        const t = oneShot('held-del', T0 + 5000);
        await createAll([t]);
        const tick = t.next_fire_time!;
        expect(await store.commitFires([fire(t, { next: null, now: tick - 800, ahead: true })])).toEqual(['committed']);
        expect(await store.delete('held-del')).not.toBeNull();
        expect(await claim(t, tick)).toEqual(['undone']);
        expect(await store.heldFires!.uncommitHeld('held-del')).toBe(false);
      });
    });

    describe('updateRuns', () => {
      async function committed(id: string, body?: Record<string, unknown>): Promise<{ t: Task; runId: string }> {
        const t = makeTask({ id, body });
        await createAll([t]);
        expect(await store.commitFires([fire(t)])).toEqual(['committed']);
        return { t, runId: fireId(id, t.next_fire_time!) };
      }

      it('RUNNING then SUCCESS: run fields and the task`s last_status', async () => {
        const { t, runId } = await committed('r1');
        const start = t.next_fire_time! + 10;
        await store.updateRuns([{ run_id: runId, task_id: 'r1', status: 'RUNNING', attempts: 1, node: 'node-b', start_time: start }]);
        expect(await store.getRun(runId)).toMatchObject({ status: 'RUNNING', attempts: 1, node: 'node-b', start_time: start, end_time: null });
        expect((await store.get('r1'))!.last_status).toBeNull();

        await store.updateRuns([
          { run_id: runId, task_id: 'r1', status: 'SUCCESS', attempts: 2, node: 'node-b', start_time: start, end_time: start + 250, http_status: 204, error: null, duration_ms: 250, response_body: 'ok' },
        ]);
        expect(await store.getRun(runId)).toMatchObject({
          run_id: runId,
          task_id: 'r1',
          status: 'SUCCESS',
          attempts: 2,
          node: 'node-b',
          start_time: start,
          end_time: start + 250,
          http_status: 204,
          error: null,
          duration_ms: 250,
          response_body: 'ok',
        });
        expect((await store.get('r1'))!.last_status).toBe('SUCCESS');
        expect(await store.unfinishedRuns({ slots: null, after: null, limit: 10 })).toEqual([]);
      });

      it('a late RUNNING after SUCCESS does not reopen the run', async () => {
        const { runId } = await committed('r2');
        await store.updateRuns([{ run_id: runId, task_id: 'r2', status: 'SUCCESS', attempts: 1, end_time: T0 + 5, http_status: 200 }]);
        await store.updateRuns([{ run_id: runId, task_id: 'r2', status: 'RUNNING', attempts: 1, node: 'late' }]);
        const run = (await store.getRun(runId))!;
        expect(run.status).toBe('SUCCESS');
        expect(run.http_status).toBe(200);
        expect(await store.unfinishedRuns({ slots: null, after: null, limit: 10 })).toEqual([]);
      });

      it('a late RUNNING after a report closed the run fills in the callback facts still missing, without reopening it', async () => {
        // An async worker can report before this node has recorded the callback's own answer (202).
        const { runId } = await committed('r2b', { completion: 'async' });
        expect((await store.reportRun({ run_id: runId, status: 'FAIL', message: 'disk full', output: null, now: T0 + 10 })).result).toBe('closed');
        await store.updateRuns([{ run_id: runId, task_id: 'r2b', status: 'RUNNING', attempts: 1, node: 'node-a', start_time: T0 + 2, http_status: 202 }]);
        const run = (await store.getRun(runId))!;
        expect(run).toMatchObject({ status: 'FAIL', http_status: 202, attempts: 1, node: 'node-a', message: 'disk full' });
        expect(await store.unfinishedRuns({ slots: null, after: null, limit: 10 })).toEqual([]);
      });

      it('reportRun closes only a run that awaits a report: a sync run is refused in every phase, atomically (issue 23 item 6)', async () => {
        const { runId } = await committed('rs1');
        const report = (status: 'SUCCESS' | 'FAIL', now: number) => store.reportRun({ run_id: runId, status, message: null, output: null, now });
        // Not sent yet (PENDING), an attempt in flight (RUNNING, answer unknown), between attempts.
        expect((await report('SUCCESS', T0 + 1)).result).toBe('not_awaiting');
        await store.updateRuns([{ run_id: runId, task_id: 'rs1', status: 'RUNNING', attempts: 1, node: 'node-a', start_time: T0 + 2 }]);
        expect((await report('SUCCESS', T0 + 3)).result).toBe('not_awaiting');
        await store.updateRuns([{ run_id: runId, task_id: 'rs1', status: 'RUNNING', attempts: 1, http_status: 500, retrying: true }]);
        // A store shared by nodes keeps the mark (refused at once); one process needs none.
        expect((await report('FAIL', T0 + 4)).result).toBe(store.kind === 'redis' ? 'retrying' : 'not_awaiting');
        expect(await store.getRun(runId)).toMatchObject({ status: 'RUNNING', end_time: null, attempts: 1 });
        expect((await store.get('rs1'))!.last_status).toBeNull();
        // Its callback answered 202 (a deadline): it awaits the report, which closes it.
        await store.updateRuns([{ run_id: runId, task_id: 'rs1', status: 'RUNNING', attempts: 2, http_status: 202, deadline: T0 + 60_000 }]);
        expect((await report('SUCCESS', T0 + 5)).result).toBe('closed');
        expect(await store.getRun(runId)).toMatchObject({ status: 'SUCCESS', attempts: 2, http_status: 202 });
        // A deadline passed and the callback goes out again (deadline cleared): no report until it answers 202 again.
        const again = await committed('rs2');
        await store.updateRuns([{ run_id: again.runId, task_id: 'rs2', status: 'RUNNING', attempts: 1, http_status: 202, deadline: T0 + 60_000 }]);
        await store.updateRuns([{ run_id: again.runId, task_id: 'rs2', status: 'RUNNING', attempts: 1, deadline: null }]);
        expect((await store.reportRun({ run_id: again.runId, status: 'SUCCESS', message: null, output: null, now: T0 + 6 })).result).toBe('not_awaiting');
        // An async task's run takes a report in any phase, even before its first attempt.
        const async = await committed('rs3', { completion: 'async' });
        expect((await store.reportRun({ run_id: async.runId, status: 'FAIL', message: 'x', output: null, now: T0 + 7 })).result).toBe('closed');
      });

      it('a final outcome is not overwritten by another final outcome', async () => {
        const { runId } = await committed('r3');
        await store.updateRuns([{ run_id: runId, task_id: 'r3', status: 'SUCCESS', attempts: 1, http_status: 200 }]);
        await store.updateRuns([{ run_id: runId, task_id: 'r3', status: 'FAIL', attempts: 2, http_status: 500, error: 'HTTP 500' }]);
        expect((await store.getRun(runId))!.status).toBe('SUCCESS');
        expect((await store.get('r3'))!.last_status).toBe('SUCCESS');
      });

      it('FAIL records the error and sets last_status FAIL', async () => {
        const { runId } = await committed('r4');
        await store.updateRuns([{ run_id: runId, task_id: 'r4', status: 'FAIL', attempts: 3, http_status: 503, error: 'HTTP 503' }]);
        expect(await store.getRun(runId)).toMatchObject({ status: 'FAIL', attempts: 3, http_status: 503, error: 'HTTP 503' });
        expect((await store.get('r4'))!.last_status).toBe('FAIL');
      });

      it('several updates in one call; an unknown run is ignored', async () => {
        const a = await committed('r5');
        const b = await committed('r6');
        await store.updateRuns([
          { run_id: a.runId, task_id: 'r5', status: 'SUCCESS', attempts: 1 },
          { run_id: 'nope:1', task_id: 'nope', status: 'SUCCESS', attempts: 1 },
          { run_id: b.runId, task_id: 'r6', status: 'RUNNING', attempts: 1 },
        ]);
        expect((await store.getRun(a.runId))!.status).toBe('SUCCESS');
        expect((await store.getRun(b.runId))!.status).toBe('RUNNING');
        expect(await store.getRun('nope:1')).toBeNull();
        expect(await store.updateRuns([])).toBeUndefined();
      });
    });

    describe('unfinishedRuns (the outbox)', () => {
      it('returns PENDING and RUNNING runs joined with their task, in (scheduled_time, run_id) order', async () => {
        const a = makeTask({ id: 'ob-a', next_fire_time: T0 + 2000 });
        const b = makeTask({ id: 'ob-b', next_fire_time: T0 + 1000 });
        const c = makeTask({ id: 'ob-c', next_fire_time: T0 + 1000 });
        const d = makeTask({ id: 'ob-d', next_fire_time: T0 + 500 });
        await createAll([a, b, c, d]);
        expect(await store.commitFires([fire(a), fire(b), fire(c), fire(d)])).toEqual(['committed', 'committed', 'committed', 'committed']);
        await store.updateRuns([
          { run_id: fireId('ob-b', T0 + 1000), task_id: 'ob-b', status: 'RUNNING', attempts: 1 },
          { run_id: fireId('ob-d', T0 + 500), task_id: 'ob-d', status: 'SUCCESS', attempts: 1 },
        ]);

        const rows = await store.unfinishedRuns({ slots: null, after: null, limit: 10 });
        expect(rows.map((r) => r.run.run_id)).toEqual([fireId('ob-b', T0 + 1000), fireId('ob-c', T0 + 1000), fireId('ob-a', T0 + 2000)]);
        expect(rows.map((r) => r.run.status)).toEqual(['RUNNING', 'PENDING', 'PENDING']);
        for (const r of rows) {
          expect(r.task.id).toBe(r.run.task_id);
          expect(r.task).toEqual(await store.get(r.task.id));
        }
        expect(rows[0]!.run.attempts).toBe(1);
      });

      it('pages with `after` and filters by slot', async () => {
        const ids = idsInDistinctSlots(4, 'ob-slot');
        const tasks = ids.map((id, i) => makeTask({ id, next_fire_time: T0 + 1000 * (i + 1) }));
        await createAll(tasks);
        expect(await store.commitFires(tasks.map((t) => fire(t)))).toEqual(Array<string>(4).fill('committed'));

        const seen: string[] = [];
        let after: { time: number; id: string } | null = null;
        for (let i = 0; i < 10; i++) {
          const page = await store.unfinishedRuns({ slots: null, after, limit: 3 });
          seen.push(...page.map((r) => r.run.task_id));
          if (page.length < 3) break;
          const last = page[page.length - 1]!.run;
          after = { time: last.scheduled_time, id: last.run_id };
        }
        expect(seen).toEqual(ids);

        const [t0, , t2] = tasks as [Task, Task, Task, Task];
        const filtered = await store.unfinishedRuns({ slots: [t2.slot, t0.slot], after: null, limit: 10 });
        expect(filtered.map((r) => r.run.task_id)).toEqual([t0.id, t2.id]);
        expect(filtered.every((r) => r.run.slot === r.task.slot)).toBe(true);
        expect(await store.unfinishedRuns({ slots: [], after: null, limit: 10 })).toEqual([]);
      });

      it('`upTo` bounds the scheduled time (inclusive), also with `after`, slots and paging', async () => {
        const ids = idsInDistinctSlots(5, 'ob-upto');
        const tasks = ids.map((id, i) => makeTask({ id, next_fire_time: T0 + 1000 * (i + 1) }));
        await createAll(tasks);
        expect(await store.commitFires(tasks.map((t) => fire(t)))).toEqual(Array<string>(5).fill('committed'));
        const idsOf = async (q: Parameters<TaskStore['unfinishedRuns']>[0]): Promise<string[]> => (await store.unfinishedRuns(q)).map((r) => r.run.task_id);
        expect(await idsOf({ slots: null, after: null, limit: 10, upTo: T0 + 3000 })).toEqual(ids.slice(0, 3));
        expect(await idsOf({ slots: null, after: null, limit: 10, upTo: T0 + 2999 })).toEqual(ids.slice(0, 2));
        expect(await idsOf({ slots: null, after: null, limit: 10, upTo: T0 })).toEqual([]);
        expect(await idsOf({ slots: null, after: { time: T0 + 1000, id: fireId(ids[0]!, T0 + 1000) }, limit: 10, upTo: T0 + 4000 })).toEqual(ids.slice(1, 4));
        const [t0, , t2, , t4] = tasks as [Task, Task, Task, Task, Task];
        expect(await idsOf({ slots: [t4.slot, t2.slot, t0.slot], after: null, limit: 10, upTo: T0 + 3000 })).toEqual([t0.id, t2.id]);
        expect(await idsOf({ slots: null, after: null, limit: 2, upTo: T0 + 4000 })).toEqual(ids.slice(0, 2));
        expect(await idsOf({ slots: null, after: null, limit: 10 })).toEqual(ids);
      });
    });

    describe('updateTask: the pause reason (PauseInfo)', () => {
      it('is stored with the task on pause, listed, and gone once cleared on resume', async () => {
        await createAll([makeTask({ id: 'pz-1', body: { tags: ['pz'] } })]);
        const cur = (await store.get('pz-1'))!;
        expect(cur.pause).toBeUndefined();
        const pause = { kind: 'manual' as const, note: 'waiting for the vendor "fix" \\ ünïcödé', by: 'ops', at: T0 + 5 };
        const paused = await store.updateTask('pz-1', { state: 'paused', pause, update_time: T0 + 5 }, { state: cur.state, next_fire_time: cur.next_fire_time });
        expect(paused).toMatchObject({ state: 'paused', pause });
        expect((await store.get('pz-1'))!.pause).toEqual(pause);
        expect((await store.listTasks({ state: 'paused', namePrefix: null, after: null, limit: 10, tag: 'pz' }))[0]!.pause).toEqual(pause);
        const auto = { kind: 'auto' as const, note: 'auto-paused after 3 consecutive failures: HTTP 500', by: null, at: T0 + 6 };
        await store.updateTask('pz-1', { pause: auto, update_time: T0 + 6 }, { state: 'paused', next_fire_time: cur.next_fire_time });
        expect((await store.get('pz-1'))!.pause).toEqual(auto);
        await store.updateTask('pz-1', { state: 'active', pause: null, update_time: T0 + 7 }, { state: 'paused', next_fire_time: cur.next_fire_time });
        const resumed = (await store.get('pz-1'))!;
        expect(resumed.state).toBe('active');
        expect(resumed.pause ?? null).toBeNull();
        expect('pause' in resumed && resumed.pause !== undefined).toBe(false);
      });
    });

    describe('updateTask: the child graph (on_success)', () => {
      /** Sets a task's children with updateTask, guarded by the state read just before. */
      const setChildren = async (id: string, children: string[] | null): Promise<Awaited<ReturnType<TaskStore['updateTask']>>> => {
        const cur = (await store.get(id))!;
        return store.updateTask(id, { on_success: children, update_time: T0 + 1 }, { state: cur.state, next_fire_time: cur.next_fire_time });
      };
      const chain = async (...ids: string[]): Promise<void> => createAll(ids.map((id) => makeTask({ id })));

      it('a change that closes a cycle is refused with its path, and the task is left as it was', async () => {
        await chain('g-a', 'g-b', 'g-c');
        expect(await setChildren('g-a', ['g-b'])).toMatchObject({ id: 'g-a', on_success: ['g-b'] });
        expect(await setChildren('g-b', ['g-c'])).toMatchObject({ id: 'g-b', on_success: ['g-c'] });
        expect(await setChildren('g-c', ['g-a'])).toEqual({ refused: 'cycle', path: ['g-c', 'g-a', 'g-b', 'g-c'] });
        expect((await store.get('g-c'))!.on_success).toBeNull();
        // a task as its own child is a cycle too
        expect(await setChildren('g-a', ['g-a'])).toEqual({ refused: 'cycle', path: ['g-a', 'g-a'] });
        expect((await store.get('g-a'))!.on_success).toEqual(['g-b']);
      });

      it('an edge removed (children set to null or changed) no longer counts', async () => {
        await chain('r-a', 'r-b', 'r-c');
        expect(await setChildren('r-a', ['r-b'])).toMatchObject({ on_success: ['r-b'] });
        expect(await setChildren('r-a', null)).toMatchObject({ on_success: null });
        expect(await setChildren('r-b', ['r-a'])).toMatchObject({ on_success: ['r-a'] });
        expect(await setChildren('r-b', ['r-c'])).toMatchObject({ on_success: ['r-c'] });
        expect(await setChildren('r-a', ['r-b'])).toMatchObject({ on_success: ['r-b'] });
        expect(await setChildren('r-c', ['r-a'])).toEqual({ refused: 'cycle', path: ['r-c', 'r-a', 'r-b', 'r-c'] });
      });

      it('the children a task was created with count', async () => {
        await chain('k-child');
        await createAll([makeTask({ id: 'k-parent', body: { on_success: ['k-child'] } })]);
        expect(await setChildren('k-child', ['k-parent'])).toEqual({ refused: 'cycle', path: ['k-child', 'k-parent', 'k-child'] });
      });

      it('a change that lost its optimistic check (conflict) leaves no edge behind', async () => {
        await chain('c-a', 'c-b');
        expect(await store.updateTask('c-a', { on_success: ['c-b'], update_time: T0 + 1 }, { state: 'paused', next_fire_time: null })).toBe('conflict');
        expect(await setChildren('c-b', ['c-a'])).toMatchObject({ on_success: ['c-a'] });
      });

      it('a deleted task leaves the graph', async () => {
        await chain('d-a', 'd-b');
        expect(await setChildren('d-a', ['d-b'])).toMatchObject({ on_success: ['d-b'] });
        expect(await store.delete('d-a')).not.toBeNull();
        await chain('d-a');
        expect(await setChildren('d-b', ['d-a'])).toMatchObject({ on_success: ['d-a'] });
      });

      it('two concurrent changes that would close a cycle between them: exactly one wins (10 rounds)', async () => {
        for (let i = 0; i < 10; i++) {
          const [x, y] = [`x${i}`, `y${i}`];
          await chain(x, y);
          const results = await Promise.all([setChildren(x, [y]), setChildren(y, [x])]);
          const won = results.filter((r) => r !== null && typeof r === 'object' && 'id' in r);
          const refused = results.filter((r) => r !== null && typeof r === 'object' && 'refused' in r);
          expect({ round: i, won: won.length, refused: refused.length }).toEqual({ round: i, won: 1, refused: 1 });
          const stored = [(await store.get(x))!.on_success, (await store.get(y))!.on_success];
          expect(stored.filter((c) => c !== null)).toHaveLength(1);
        }
      });
    });

    describe('listRuns, getRun, ping', () => {
      it('lists a task`s runs newest first, up to the limit', async () => {
        const t = makeTask({ id: 'hist' });
        await createAll([t]);
        const first = t.next_fire_time!;
        for (let i = 0; i < 4; i++) {
          const tick = first + i * MIN;
          expect(await store.commitFires([fire(t, { expected: tick, next: tick + MIN })])).toEqual(['committed']);
        }
        const runs = await store.listRuns('hist', 10);
        expect(runs.map((r) => r.scheduled_time)).toEqual([first + 3 * MIN, first + 2 * MIN, first + MIN, first]);
        expect(runs.every((r) => r.task_id === 'hist')).toBe(true);
        expect((await store.listRuns('hist', 2)).map((r) => r.scheduled_time)).toEqual([first + 3 * MIN, first + 2 * MIN]);
        expect(await store.listRuns('other', 10)).toEqual([]);
      });

      it('getRun of an unknown run is null', async () => {
        expect(await store.getRun('x:1')).toBeNull();
      });

      it('ping is true while open', async () => {
        expect(await store.ping()).toBe(true);
      });
    });
  });
}
