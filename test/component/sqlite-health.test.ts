/**
 * The SQLite store's health: the start-up check finds a damaged file (and passes a healthy one),
 * opening a damaged file fails with an explained error and writes nothing into it, and a store
 * opened without the check marks itself damaged at the first damaged read: its ping fails and every
 * later call, creates included, is refused as unavailable.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/errors.js';
import { checkDatabaseFile } from '../../src/store/sqlite-check.js';
import { openSqliteStore } from '../../src/store/sqlite-open.js';
import { SqliteTaskStore } from '../../src/store/sqlite.js';
import { StoreStartupError } from '../../src/store/startup-errors.js';
import { copyDatabase, zeroRootPages } from '../helpers/corrupt.js';
import { T0, makeTask, tempDir } from './fixtures.js';

const dirs: { remove(): void }[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) d.remove();
});

const sha = (f: string): string => createHash('sha256').update(readFileSync(f)).digest('hex');

/** A healthy database with `n` tasks and one finished run per task (closed, checkpointed). */
async function healthyDb(n = 50): Promise<{ dir: string; file: string; ids: string[] }> {
  const tmp = tempDir('xcron-health-');
  dirs.push(tmp);
  const file = join(tmp.dir, 'xcron.db');
  const store = new SqliteTaskStore({ file, synchronous: 'normal' });
  const epoch = store.claimEpoch();
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const t = makeTask({ id: `health-${i}` });
    await store.create(t);
    ids.push(t.id);
    const run_id = `${t.id}:${t.next_fire_time}`;
    expect(await store.commitFires([{ slot: t.slot, token: epoch, task_id: t.id, expected: t.next_fire_time!, next: t.next_fire_time! + 60_000, now: T0, run: { run_id, node: 'n', status: 'PENDING', error: null } }])).toEqual(['committed']);
    await store.updateRuns([{ run_id, task_id: t.id, status: 'SUCCESS', attempts: 1, http_status: 200, end_time: T0 + 1 }]);
  }
  await store.close();
  return { dir: tmp.dir, file, ids };
}

describe('the start-up check', () => {
  it('passes a healthy file (quick and full), and a file that does not exist yet is not checked', async () => {
    const { dir, file } = await healthyDb();
    expect(checkDatabaseFile(file, 'quick')).toMatchObject({ mode: 'quick', ok: true, problems: [] });
    expect(checkDatabaseFile(file, 'full')).toMatchObject({ mode: 'full', ok: true, problems: [] });
    expect(checkDatabaseFile(file, 'off')).toBeNull();
    expect(checkDatabaseFile(join(dir, 'new.db'), 'quick')).toBeNull();
  });

  for (const mode of ['quick', 'full'] as const) {
    it(`finds the damaged root pages of the tasks and runs tables in a copy (${mode})`, async () => {
      const { dir, file } = await healthyDb();
      const copy = join(dir, 'copy.db');
      copyDatabase(file, copy);
      zeroRootPages(copy, ['tasks', 'runs']);
      const r = checkDatabaseFile(copy, mode);
      expect(r?.ok).toBe(false);
      expect(r?.problems.length).toBeGreaterThan(0);
      expect(checkDatabaseFile(file, mode)?.ok).toBe(true); // the original is untouched
    });
  }

  it('finds damage to the runs table alone, which creates never touch', async () => {
    const { dir, file } = await healthyDb();
    const copy = join(dir, 'copy.db');
    copyDatabase(file, copy);
    zeroRootPages(copy, ['runs']);
    expect(checkDatabaseFile(copy, 'quick')?.ok).toBe(false);
  });
});

describe('opening a damaged file', () => {
  it('fails with a StoreStartupError that names the file, and writes nothing into it', async () => {
    const { dir, file } = await healthyDb();
    const copy = join(dir, 'copy.db');
    copyDatabase(file, copy);
    zeroRootPages(copy, ['tasks', 'runs']);
    const before = sha(copy);
    let err: unknown = null;
    try {
      openSqliteStore({ file: copy, synchronous: 'normal' }, true);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StoreStartupError);
    expect((err as Error).message).toContain(copy);
    expect((err as Error).message).toMatch(/is corrupt \(PRAGMA quick_check: /);
    expect((err as Error).message).toMatch(/restore .* from a backup/);
    expect(sha(copy)).toBe(before); // no schema, no epoch written into the damaged file
  });

  it('leaves a WAL left by a crash unapplied: the damaged file and its WAL are both unchanged', async () => {
    const { dir, file } = await healthyDb();
    // A "crash": a connection commits into the WAL and is never checkpointed; the files are copied as they are.
    const live = new Database(file);
    live.pragma('wal_autocheckpoint = 0');
    live.prepare("INSERT INTO meta (k, v) VALUES ('crash-test', 'in the WAL only')").run();
    const copy = join(dir, 'copy.db');
    copyFileSync(file, copy);
    copyFileSync(`${file}-wal`, `${copy}-wal`);
    live.close();
    zeroRootPages(copy, ['runs']); // a page the WAL does not hold
    const before = [sha(copy), sha(`${copy}-wal`)];
    expect(() => openSqliteStore({ file: copy, synchronous: 'normal' }, true)).toThrow(StoreStartupError);
    expect([sha(copy), sha(`${copy}-wal`)]).toEqual(before);
  });

  it('opens a healthy file and claims an epoch', async () => {
    const { file, ids } = await healthyDb(3);
    const o = openSqliteStore({ file, synchronous: 'normal', startupCheck: 'full' }, true);
    try {
      expect(o.check).toMatchObject({ mode: 'full', ok: true });
      expect(o.epoch).toBe(2);
      expect(await o.store.ping()).toBe(true);
      expect((await o.store.get(ids[0]!))?.id).toBe(ids[0]);
    } finally {
      await o.store.close();
    }
  });
});

describe('a store running on a damaged file (start-up check off)', () => {
  it('fails its ping once the probe reads the damage, then refuses every call, creates included', async () => {
    const { dir, file, ids } = await healthyDb();
    const copy = join(dir, 'copy.db');
    copyDatabase(file, copy);
    zeroRootPages(copy, ['runs']); // the tasks table is whole: creates alone would still succeed
    const { store } = openSqliteStore({ file: copy, synchronous: 'normal', startupCheck: 'off' }, true);
    try {
      expect((await store.get(ids[0]!))?.id).toBe(ids[0]); // tasks still read
      expect(await store.ping()).toBe(false); // the probe reads the runs table's root page
      await expect(store.create(makeTask({ id: 'after-damage' }))).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.create(makeTask({ id: 'after-damage-2' }))).rejects.toThrow(/database file is corrupt/);
      await expect(store.get(ids[0]!)).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.stats()).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(await store.ping()).toBe(false);
    } finally {
      await store.close();
    }
  });

  it('marks itself damaged at the first call that meets the damage, without a ping', async () => {
    const { dir, file, ids } = await healthyDb();
    const copy = join(dir, 'copy.db');
    copyDatabase(file, copy);
    zeroRootPages(copy, ['runs']);
    const { store } = openSqliteStore({ file: copy, synchronous: 'normal', startupCheck: 'off' }, true);
    try {
      await expect(store.listRuns(ids[0]!, 10)).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.create(makeTask({ id: 'after-damage' }))).rejects.toThrow(/database file is corrupt/);
      expect(await store.ping()).toBe(false);
    } finally {
      await store.close();
    }
  });

  it('a healthy store pings true and keeps working (control)', async () => {
    const { file } = await healthyDb(3);
    const { store } = openSqliteStore({ file, synchronous: 'normal', startupCheck: 'off' }, true);
    try {
      expect(await store.ping()).toBe(true);
      expect((await store.create(makeTask({ id: 'fine' }))).created).toBe(true);
      expect(await store.ping()).toBe(true);
    } finally {
      await store.close();
    }
  });
});
