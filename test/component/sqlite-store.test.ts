/** SqliteTaskStore: the shared TaskStore contract on a real temp file, plus SQLite-specific checks. */
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/errors.js';
import { SqliteTaskStore } from '../../src/store/sqlite.js';
import { fireId } from '../../src/task/index.js';
import { T0, makeTask, tempDir } from './fixtures.js';
import { sqliteHarness } from './sqlite-harness.js';
import { storeContract } from './store-contract.js';
import { storeOpsContract } from './store-contract-ops.js';
import { storeExecutorsContract } from './store-contract-executors.js';

storeContract('sqlite', () =>
  sqliteHarness('xcron-sqlite-', (file) => {
    const store = new SqliteTaskStore({ file, synchronous: 'normal' });
    return Promise.resolve({ store, epoch: store.claimEpoch() });
  }),  { uncommit: true },
);

storeExecutorsContract('sqlite', () =>
  sqliteHarness('xcron-sqlite-exec-', (file) => {
    const store = new SqliteTaskStore({ file, synchronous: 'normal' });
    return Promise.resolve({ store, epoch: store.claimEpoch() });
  }),
);

storeOpsContract('sqlite', () =>
  sqliteHarness('xcron-sqlite-ops-', (file) => {
    const store = new SqliteTaskStore({ file, synchronous: 'normal' });
    return Promise.resolve({ store, epoch: store.claimEpoch() });
  }),
);

describe('SqliteTaskStore specifics', () => {
  let tmp: ReturnType<typeof tempDir>;
  let file: string;
  const open: SqliteTaskStore[] = [];
  const openStore = (): SqliteTaskStore => {
    const s = new SqliteTaskStore({ file, synchronous: 'full' });
    open.push(s);
    return s;
  };

  beforeEach(() => {
    tmp = tempDir('xcron-sqlite-');
    file = join(tmp.dir, 'nested', 'dir', 'xcron.db'); // the directory is created on open
  });
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
    tmp.remove();
  });

  it('a created task and its committed run survive closing and reopening the file', async () => {
    const a = openStore();
    const epoch = a.claimEpoch();
    const t = makeTask({ id: 'durable', body: { name: 'keep me', idempotency_key: 'dur-1' } });
    expect((await a.create(t)).created).toBe(true);
    expect(await a.commitFires([{ slot: t.slot, token: epoch, task_id: t.id, expected: t.next_fire_time!, next: t.next_fire_time! + 60_000, now: T0, run: { run_id: fireId(t.id, t.next_fire_time!), node: 'n', status: 'PENDING', error: null } }])).toEqual(['committed']);
    await a.close();

    const b = openStore();
    const got = await b.get('durable');
    expect(got).toEqual({ ...t, next_fire_time: t.next_fire_time! + 60_000, run_count: 1, last_fire_time: t.next_fire_time, update_time: T0 });
    const outbox = await b.unfinishedRuns({ slots: null, after: null, limit: 10 });
    expect(outbox.map((r) => r.run.run_id)).toEqual([fireId(t.id, t.next_fire_time!)]);
    // the idempotency key is durable too
    expect((await b.create(makeTask({ id: 'other', body: { idempotency_key: 'dur-1' } }))).created).toBe(false);
  });

  it('each claimEpoch is newer than the last, across reopen, and fences older holders', async () => {
    const a = openStore();
    const e1 = a.claimEpoch();
    const b = openStore();
    const e2 = b.claimEpoch();
    expect(e2).toBeGreaterThan(e1);
    await b.close();
    const c = openStore();
    const e3 = c.claimEpoch();
    expect(e3).toBeGreaterThan(e2);

    const t = makeTask({ id: 'f' });
    await a.create(t);
    const req = (token: number) => ({ slot: t.slot, token, task_id: t.id, expected: t.next_fire_time!, next: t.next_fire_time! + 60_000, now: T0, run: { run_id: fireId(t.id, t.next_fire_time!), node: 'n', status: 'PENDING' as const, error: null } });
    // a's view: its own epoch is stale now
    expect(await a.commitFires([req(e1)])).toEqual(['fenced']);
    expect(await a.commitFires([req(e2)])).toEqual(['fenced']);
    expect(await a.commitFires([req(e3)])).toEqual(['committed']);
  });

  it('a closed store rejects with StoreUnavailableError and ping is false', async () => {
    const s = openStore();
    await s.close();
    await expect(s.get('x')).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(s.create(makeTask({ id: 'x' }))).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(s.commitFires([{ slot: 0, token: 1, task_id: 'x', expected: 1, next: 2, now: 1, run: { run_id: 'x:1', node: 'n', status: 'PENDING', error: null } }])).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(await s.ping()).toBe(false);
    await s.close(); // closing twice is harmless
  });

  it('two stores on one file see each other`s writes', async () => {
    const a = openStore();
    const b = openStore();
    await a.create(makeTask({ id: 'shared' }));
    expect((await b.get('shared'))?.id).toBe('shared');
  });
});
