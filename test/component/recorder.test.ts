/**
 * RunRecorder on a real SQLite file: run-state writes are coalesced, wait while callbacks are
 * queued for a connection (standalone mode's `backlogged` probe), are written once the queue
 * empties or MAX_DEFER_MS has passed, and a large deferred batch is written in full.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SystemClock } from '../../src/clock/index.js';
import { fireId } from '../../src/task/index.js';
import { RunRecorder } from '../../src/scheduler/recorder.js';
import { SqliteTaskStore } from '../../src/store/sqlite.js';
import { T0, makeTask, silentLog, tempDir } from './fixtures.js';
import { waitUntil } from '../helpers/wait.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** Waits until `check` holds (polling; generous timeouts). */
const waitFor = async (check: () => boolean | Promise<boolean>, timeoutMs: number, what = 'the condition'): Promise<void> => {
  await waitUntil(check, (v) => v, timeoutMs, what, 20);
};

/** A store with `n` one-shot tasks whose fire is committed (runs PENDING). Returns the run ids. */
async function storeWithPendingRuns(n: number): Promise<{ store: SqliteTaskStore; runs: { run_id: string; task_id: string }[] }> {
  const tmp = tempDir('recorder');
  const store = new SqliteTaskStore({ file: join(tmp.dir, 'xcron.db'), synchronous: 'normal' });
  const epoch = store.claimEpoch();
  cleanups.push(async () => {
    await store.close();
    tmp.remove();
  });
  const at = T0 + 3_600_000;
  const tasks = Array.from({ length: n }, (_, i) => makeTask({ id: `rec-${i}`, type: 2, format: String(at) }));
  for (const t of tasks) await store.create(t);
  const res = await store.commitFires(
    tasks.map((t) => ({ slot: t.slot, token: epoch, task_id: t.id, expected: t.next_fire_time!, next: null, now: at, run: { run_id: fireId(t.id, t.next_fire_time!), node: 'n', status: 'PENDING' as const, error: null } })),
  );
  expect(res.every((r) => r === 'committed')).toBe(true);
  return { store, runs: tasks.map((t) => ({ run_id: fireId(t.id, t.next_fire_time!), task_id: t.id })) };
}

const success = (r: { run_id: string; task_id: string }) => ({ run_id: r.run_id, task_id: r.task_id, status: 'SUCCESS' as const, attempts: 1, http_status: 200, end_time: Date.now() });

describe('RunRecorder', () => {
  it('writes coalesced run states without a backlog probe', async () => {
    const { store, runs } = await storeWithPendingRuns(3);
    const rec = new RunRecorder(store, silentLog, new SystemClock());
    for (const r of runs) rec.push({ ...success(r), status: 'RUNNING', start_time: Date.now() });
    for (const r of runs) rec.push(success(r));
    await waitFor(async () => (await store.getRun(runs[2]!.run_id))?.status === 'SUCCESS', 10_000);
    for (const r of runs) expect((await store.getRun(r.run_id))?.status).toBe('SUCCESS');
    expect(rec.deferrals).toBe(0);
  });

  it('holds the writes while callbacks are queued, and writes them when the queue empties', async () => {
    const { store, runs } = await storeWithPendingRuns(5);
    let backlog = true;
    const rec = new RunRecorder(store, silentLog, new SystemClock(), undefined, () => backlog);
    for (const r of runs) rec.push(success(r));
    // Several flush periods pass while the backlog lasts: nothing is written, the runs stay in the outbox.
    await waitFor(() => rec.deferrals >= 4, 10_000);
    for (const r of runs) expect((await store.getRun(r.run_id))?.status).toBe('PENDING');
    expect(rec.size).toBe(5);
    backlog = false;
    await waitFor(() => rec.size === 0, 10_000);
    await waitFor(async () => (await store.getRun(runs[4]!.run_id))?.status === 'SUCCESS', 10_000);
    for (const r of runs) expect((await store.getRun(r.run_id))?.status).toBe('SUCCESS');
    const task = await store.get(runs[0]!.task_id);
    expect(task?.last_status).toBe('SUCCESS');
  });

  it('writes after MAX_DEFER_MS even if the backlog never clears', async () => {
    const { store, runs } = await storeWithPendingRuns(2);
    const rec = new RunRecorder(store, silentLog, new SystemClock(), undefined, () => true);
    for (const r of runs) rec.push(success(r));
    await waitFor(async () => (await store.getRun(runs[1]!.run_id))?.status === 'SUCCESS', 20_000);
    expect(rec.deferrals).toBeGreaterThan(0);
    expect((await store.getRun(runs[0]!.run_id))?.status).toBe('SUCCESS');
  });

  it('writes a deferred batch larger than one store call in full', async () => {
    const { store, runs } = await storeWithPendingRuns(12_000);
    let backlog = true;
    const rec = new RunRecorder(store, silentLog, new SystemClock(), undefined, () => backlog);
    for (const r of runs) rec.push(success(r));
    await waitFor(() => rec.deferrals >= 2, 10_000);
    backlog = false;
    await waitFor(() => rec.size === 0, 20_000);
    await rec.flush();
    const open = await store.unfinishedRuns({ slots: null, after: null, limit: 100_000 });
    expect(open.length).toBe(0);
    for (const i of [0, 4999, 5000, 9999, 10_000, 11_999]) expect((await store.getRun(runs[i]!.run_id))?.status).toBe('SUCCESS');
  }, 60_000);
});
