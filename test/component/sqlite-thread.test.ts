/**
 * ThreadedSqliteStore: the SQLite store run in a worker thread (the server's default). It must pass
 * the same TaskStore contract as SqliteTaskStore on the main thread, keep error types across the
 * thread boundary, and survive its thread dying. The worker script is the compiled one in dist/
 * (bash build.sh), the file the server runs.
 */
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/errors.js';
import { SqliteTaskStore } from '../../src/store/sqlite.js';
import { ThreadedSqliteStore } from '../../src/store/sqlite-thread.js';
import type { TaskStore } from '../../src/store/types.js';
import { fireId, type Task } from '../../src/task/index.js';
import { T0, makeTask, silentLog as log, tempDir } from './fixtures.js';
import { sqliteHarness } from './sqlite-harness.js';
import { storeContract } from './store-contract.js';
import { storeOpsContract } from './store-contract-ops.js';
import { storeExecutorsContract } from './store-contract-executors.js';

const WORKER = new URL('../../dist/src/store/sqlite-worker.js', import.meta.url);

beforeAll(() => {
  if (!existsSync(fileURLToPath(WORKER))) throw new Error('dist/src/store/sqlite-worker.js is missing: run bash build.sh first');
});

storeContract('sqlite in a worker thread', () =>
  sqliteHarness('xcron-sqlite-thread-', async (file) => {
    const store = await ThreadedSqliteStore.open({ file, synchronous: 'normal' }, log, WORKER);
    return { store, epoch: store.epoch };
  }),  { uncommit: true },
);

storeExecutorsContract('sqlite in a worker thread', () =>
  sqliteHarness('xcron-sqlite-thread-exec-', async (file) => {
    const store = await ThreadedSqliteStore.open({ file, synchronous: 'normal' }, log, WORKER);
    return { store, epoch: store.epoch };
  }),
);

storeOpsContract('sqlite in a worker thread', () =>
  sqliteHarness('xcron-sqlite-thread-ops-', async (file) => {
    const store = await ThreadedSqliteStore.open({ file, synchronous: 'normal' }, log, WORKER);
    return { store, epoch: store.epoch };
  }),
);

describe('ThreadedSqliteStore specifics', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });
  const open = async (): Promise<{ store: ThreadedSqliteStore & TaskStore; file: string }> => {
    const tmp = tempDir('xcron-sqlite-thread-');
    const file = join(tmp.dir, 'xcron.db');
    const store = await ThreadedSqliteStore.open({ file, synchronous: 'normal' }, log, WORKER);
    cleanups.push(async () => {
      await store.close();
      tmp.remove();
    });
    return { store, file };
  };

  it('claims a new fencing epoch per open, stored in the file', async () => {
    const { store, file } = await open();
    const a = store.epoch;
    const second = await ThreadedSqliteStore.open({ file, synchronous: 'normal' }, log, WORKER);
    expect(second.epoch).toBe(a + 1);
    await second.close();
    // The first opener's token is now stale: its commit is fenced.
    const t = makeTask({ id: 'fenced-task', next_fire_time: T0 + 1000 });
    expect((await store.create(t)).created).toBe(true);
    const res = await store.commitFires([{ slot: t.slot, token: a, task_id: t.id, expected: T0 + 1000, next: null, now: T0 + 1000, run: { run_id: fireId(t.id, T0 + 1000), node: 'n', status: 'PENDING', error: null } }]);
    expect(res).toEqual(['fenced']);
  });

  it('answers calls after close with StoreUnavailableError, not a hang', async () => {
    const { store } = await open();
    await store.close();
    await expect(store.get('nope')).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it('restarts a dead thread: calls in progress fail as unavailable, later calls work on the same file', async () => {
    const { store } = await open();
    const t = makeTask({ id: 'restart-task', next_fire_time: T0 + 5000 });
    expect((await store.create(t)).created).toBe(true);
    let restarted = 0;
    store.onRestart = () => restarted++;
    const w = (store as unknown as { worker: { terminate(): Promise<number> } }).worker;
    // A call the thread may still answer before it dies resolves; one posted to a thread that is
    // being terminated must fail as unavailable; neither hangs.
    const before = store.get(t.id);
    const kill = w.terminate();
    const during = store.get(t.id);
    await kill;
    await expect(during).rejects.toBeInstanceOf(StoreUnavailableError);
    const first = await before.then(
      () => 'answered',
      (e: unknown) => (e instanceof StoreUnavailableError ? 'unavailable' : e),
    );
    expect(['answered', 'unavailable']).toContain(first);
    // The new thread opens the same file (no new epoch) and serves the task written before.
    let got = null;
    for (let i = 0; i < 100 && got === null; i++) {
      got = await store.get(t.id).catch(() => null);
      if (got === null) await new Promise((r) => setTimeout(r, 50));
    }
    expect(got?.id).toBe(t.id);
    expect(store.restartCount()).toBe(1);
    expect(restarted).toBe(1); // main.ts then has the scheduler read its outbox again
    const res = await store.commitFires([{ slot: t.slot, token: store.epoch, task_id: t.id, expected: T0 + 5000, next: null, now: T0 + 5000, run: { run_id: fireId(t.id, T0 + 5000), node: 'n', status: 'PENDING', error: null } }]);
    expect(res).toEqual(['committed']);
  });

  it('an error thrown in the thread arrives as its own class (instanceof works on the main thread)', async () => {
    const { store } = await open();
    // A bug-shaped call: the thread throws a TypeError, and the main thread gets a TypeError.
    await expect(store.create(null as unknown as Task)).rejects.toBeInstanceOf(TypeError);
    // A locked database file: the thread's SQLITE_BUSY (after its 5 s busy timeout) becomes a
    // StoreUnavailableError, which the API answers with 503 / 1016.
    const { store: other, file } = await open();
    const blocker = new Database(file);
    blocker.exec('BEGIN EXCLUSIVE');
    try {
      await expect(other.delete('nope')).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      blocker.exec('ROLLBACK');
      blocker.close();
    }
  });
});
