/**
 * SQLite schema migrations (src/store/sqlite-schema.ts): a file written by the release before
 * numbered migrations (checked in: test/fixtures/sqlite-schema-v1.db, made by that code with three
 * tasks, two runs and a run log) and a file of the first release's shape are brought to the current
 * schema with their data; each migration runs once, in order, in its own transaction.
 */
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrate, MIGRATIONS, SCHEMA_VERSION, schemaVersion, type Migration } from '../../src/store/sqlite-schema.js';
import { specOf } from '../../src/store/sqlite-rows.js';
import { SqliteTaskStore } from '../../src/store/sqlite.js';
import { fireId } from '../../src/task/index.js';
import { makeTask, tempDir } from './fixtures.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/sqlite-schema-v1.db', import.meta.url));

/** Tables, indexes and triggers by name, and each table's columns: the shape, not the SQL text. */
function shapeOf(file: string): Record<string, string[]> {
  const db = new Database(file, { readonly: true });
  try {
    const out: Record<string, string[]> = {};
    const objects = db.prepare("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name").all() as { type: string; name: string }[];
    for (const o of objects) {
      out[`${o.type} ${o.name}`] = o.type === 'table' ? (db.prepare(`SELECT name, type FROM pragma_table_info('${o.name}')`).all() as { name: string; type: string }[]).map((c) => `${c.name} ${c.type}`).sort() : [];
    }
    return out;
  } finally {
    db.close();
  }
}

function versionOf(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return schemaVersion(db);
  } finally {
    db.close();
  }
}

describe('SQLite schema migrations', () => {
  let tmp: ReturnType<typeof tempDir>;
  const open: SqliteTaskStore[] = [];
  const openStore = (file: string): SqliteTaskStore => {
    const s = new SqliteTaskStore({ file, synchronous: 'normal' });
    open.push(s);
    return s;
  };
  /** A new file at the current schema, for comparing shapes. */
  const freshShape = async (): Promise<Record<string, string[]>> => {
    const file = join(tmp.dir, 'fresh.db');
    await openStore(file).close();
    return shapeOf(file);
  };

  beforeEach(() => {
    tmp = tempDir('xcron-migrate-');
  });
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
    tmp.remove();
  });

  it('a new file gets every migration and records the latest version', async () => {
    const file = join(tmp.dir, 'new.db');
    await openStore(file).close();
    expect(versionOf(file)).toBe(SCHEMA_VERSION);
    expect(SCHEMA_VERSION).toBe(MIGRATIONS.length);
    expect(Object.keys(shapeOf(file))).not.toContain('index runs_task');
  });

  it('migrates the file written by the release before numbered migrations, keeping its tasks, runs, logs, counts and epoch', async () => {
    const file = join(tmp.dir, 'old.db');
    copyFileSync(FIXTURE, file);
    expect(versionOf(file)).toBe(1);

    const s = openStore(file);
    const cron = await s.get('fixture-cron');
    expect(cron).toMatchObject({ name: 'every minute', state: 'active', run_count: 2, idempotency_key: 'fixture-key-1', timezone: 'UTC', misfire: expect.any(String) as string });
    expect(cron!.last_fire_time).toBe(1767225720000);
    expect(cron!.next_fire_time).toBe(1767225780000);
    expect((await s.get('fixture-paused'))?.state).toBe('paused');
    expect((await s.get('fixture-once'))?.type).toBe(2);

    const runs = await s.listRuns('fixture-cron', 10);
    expect(runs.map((r) => [r.run_id, r.status])).toEqual([
      ['fixture-cron:1767225720000', 'PENDING'],
      ['fixture-cron:1767225660000', 'SUCCESS'],
    ]);
    expect(runs[1]).toMatchObject({ attempts: 1, http_status: 200, duration_ms: 20, response_body: 'ok', node: 'n1', shards: null, deadline: null });
    expect((await s.readRunLog('fixture-cron:1767225720000', 0, 10)).map((l) => l.line)).toEqual(['line one', 'line two']);
    expect(await s.stats()).toEqual({ tasks: { active: 2, paused: 1, completed: 0 }, runs: { PENDING: 1, SUCCESS: 1 } });
    expect((await s.unfinishedRuns({ slots: null, after: null, limit: 10 })).map((p) => p.run.run_id)).toEqual(['fixture-cron:1767225720000']);
    // The idempotency key still finds its task.
    expect(await s.create(makeTask({ id: 'another', body: { idempotency_key: 'fixture-key-1' } }))).toMatchObject({ created: false, task: { id: 'fixture-cron' } });
    // The fixture's process claimed epoch 1: the next claim is newer, and commits work on the migrated file.
    const epoch = s.claimEpoch();
    expect(epoch).toBe(2);
    const tick = cron!.next_fire_time!;
    const res = await s.commitFires([{ slot: cron!.slot, token: epoch, task_id: cron!.id, expected: tick, next: tick + 60_000, now: tick, run: { run_id: fireId(cron!.id, tick), node: 'n2', status: 'PENDING', error: null } }]);
    expect(res).toEqual(['committed']);
    await s.close();

    expect(versionOf(file)).toBe(SCHEMA_VERSION);
    expect(shapeOf(file)).toEqual(await freshShape());
    // Opening again runs nothing.
    const db = new Database(file);
    try {
      expect(migrate(db)).toEqual([]);
    } finally {
      db.close();
    }
  });

  it('brings a file of the first release`s shape (no later columns, tables or indexes) to the current shape', async () => {
    const file = join(tmp.dir, 'first.db');
    const t = makeTask({ id: 'first-release', body: { name: 'old' } });
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    MIGRATIONS[0]!.up(db);
    // What the first release wrote, its way.
    db.exec("INSERT OR IGNORE INTO meta (k, v) VALUES ('schema_version', '1')");
    db.prepare('INSERT INTO tasks (id, slot, type, format, state, next_fire_time, spec, idempotency_key, create_time, update_time, run_count) VALUES (?,?,?,?,?,?,?,?,?,?,0)').run(
      t.id, t.slot, t.type, t.format, t.state, t.next_fire_time, specOf(t), null, t.create_time, t.update_time,
    );
    db.prepare("INSERT INTO runs (run_id, task_id, slot, node, scheduled_time, attempts, status, http_status, created) VALUES (?,?,?,?,?,1,'SUCCESS',204,?)").run(fireId(t.id, 1000), t.id, t.slot, 'n', 1000, 1000);
    db.close();
    expect(shapeOf(file)['table runs']).not.toContain('deadline INTEGER');

    const s = openStore(file);
    expect(await s.get(t.id)).toEqual(t);
    expect(await s.getRun(fireId(t.id, 1000))).toMatchObject({ status: 'SUCCESS', http_status: 204, shards: null, deadline: null, message: null, output: null });
    // The counts table was filled from the tasks already there.
    expect((await s.stats()).tasks).toEqual({ active: 1, paused: 0, completed: 0 });
    await s.close();
    expect(versionOf(file)).toBe(SCHEMA_VERSION);
    expect(shapeOf(file)).toEqual(await freshShape());
  });

  it('runs each migration once, in order, each in its own transaction: a failing one leaves the version before it', () => {
    const file = join(tmp.dir, 'steps.db');
    const calls: number[] = [];
    let fail = true;
    const steps: Migration[] = [
      MIGRATIONS[0]!,
      { version: 2, name: 'a table', up: (db) => (calls.push(2), db.exec('CREATE TABLE two (x)')) },
      {
        version: 3,
        name: 'a table, then a failure',
        up: (db) => {
          calls.push(3);
          db.exec('CREATE TABLE three (x)');
          if (fail) throw new Error('migration 3 failed');
        },
      },
      { version: 4, name: 'another table', up: (db) => (calls.push(4), db.exec('CREATE TABLE four (x)')) },
    ];
    const db = new Database(file);
    try {
      expect(() => migrate(db, steps)).toThrow('migration 3 failed');
      expect(schemaVersion(db)).toBe(2);
      const tables = (): string[] => (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('two', 'three', 'four') ORDER BY name").all() as { name: string }[]).map((r) => r.name);
      expect(tables()).toEqual(['two']); // three's table was rolled back with it
      fail = false;
      expect(migrate(db, steps)).toEqual([3, 4]);
      expect(migrate(db, steps)).toEqual([]);
      expect(calls).toEqual([2, 3, 3, 4]);
      expect(schemaVersion(db)).toBe(4);
      expect(tables()).toEqual(['four', 'three', 'two']);
    } finally {
      db.close();
    }
  });

  it('refuses a file written by a newer schema', async () => {
    const file = join(tmp.dir, 'newer.db');
    await openStore(file).close();
    const db = new Database(file);
    db.prepare("UPDATE meta SET v = ? WHERE k = 'schema_version'").run(String(SCHEMA_VERSION + 1));
    db.close();
    expect(() => openStore(file)).toThrow(`schema version ${SCHEMA_VERSION + 1}`);
  });
});
