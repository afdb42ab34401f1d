/**
 * The SQLite schema as numbered migrations. The file's version is `meta.schema_version`; opening a
 * file runs every migration above it, each once, in order, each in its own transaction together
 * with the new version number, so a crash between two migrations leaves a file that the next open
 * continues from.
 *
 * Files written before migrations were numbered all say version 1 (the first release wrote that
 * row and no later release changed it), whatever their shape: migrations 2 and later therefore
 * check before they change (a column is added only when it is missing, indexes and triggers use
 * IF [NOT] EXISTS, counts are recounted), so they bring any such file to the current shape.
 * A migration added from now on runs only on files that lack it and needs no such care.
 */
import type Database from 'better-sqlite3';

export interface Migration {
  version: number;
  /** What it changes, for the log and for readers. */
  name: string;
  up(db: Database.Database): void;
}

/** Adds a column unless the table has it already (files from before numbered migrations). */
function addColumn(db: Database.Database, table: string, name: string, type: string): void {
  const cols = db.prepare(`SELECT name FROM pragma_table_info('${table}')`).all() as { name: string }[];
  if (!cols.some((c) => c.name === name)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${name} ${type}`);
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'tasks, runs and meta (the first release)',
    up: (db) =>
      db.exec(`
        CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS tasks (
          id TEXT PRIMARY KEY,
          slot INTEGER NOT NULL,
          type INTEGER NOT NULL,
          format TEXT NOT NULL,
          state TEXT NOT NULL,
          next_fire_time INTEGER,
          spec TEXT NOT NULL,
          idempotency_key TEXT UNIQUE,
          create_time INTEGER NOT NULL,
          update_time INTEGER NOT NULL,
          last_fire_time INTEGER,
          last_status TEXT,
          run_count INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS tasks_due ON tasks(next_fire_time, id) WHERE state = 'active';
        CREATE TABLE IF NOT EXISTS runs (
          run_id TEXT PRIMARY KEY,
          task_id TEXT NOT NULL,
          slot INTEGER NOT NULL,
          node TEXT,
          scheduled_time INTEGER NOT NULL,
          start_time INTEGER,
          end_time INTEGER,
          attempts INTEGER NOT NULL DEFAULT 0,
          status TEXT NOT NULL,
          http_status INTEGER,
          error TEXT,
          duration_ms INTEGER,
          response_body TEXT,
          created INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS runs_task ON runs(task_id, scheduled_time DESC);
        CREATE INDEX IF NOT EXISTS runs_open ON runs(scheduled_time, run_id) WHERE status IN ('PENDING', 'RUNNING');
        INSERT OR IGNORE INTO meta (k, v) VALUES ('epoch', '0');
      `),
  },
  {
    version: 2,
    name: 'runs.shards: the per-target results of a broadcast',
    up: (db) => addColumn(db, 'runs', 'shards', 'TEXT'),
  },
  {
    version: 3,
    name: 'retention indexes: finished runs by creation time, completed tasks by update time',
    up: (db) =>
      db.exec(`
        CREATE INDEX IF NOT EXISTS runs_created ON runs(created);
        CREATE INDEX IF NOT EXISTS tasks_completed ON tasks(update_time) WHERE state = 'completed';
      `),
  },
  {
    version: 4,
    name: 'async completion: run deadline, message and output; run logs',
    up: (db) => {
      addColumn(db, 'runs', 'deadline', 'INTEGER');
      addColumn(db, 'runs', 'message', 'TEXT');
      addColumn(db, 'runs', 'output', 'TEXT');
      db.exec(`
        CREATE TABLE IF NOT EXISTS run_logs (
          run_id TEXT NOT NULL,
          seq INTEGER NOT NULL,
          time INTEGER NOT NULL,
          line TEXT NOT NULL,
          PRIMARY KEY (run_id, seq)
        ) WITHOUT ROWID;
        CREATE TRIGGER IF NOT EXISTS runs_delete_logs AFTER DELETE ON runs BEGIN DELETE FROM run_logs WHERE run_id = OLD.run_id; END;
      `);
    },
  },
  {
    version: 5,
    // Tasks by state, kept by triggers so /xcron/stats and /metrics need no scan of millions of
    // tasks. (Runs by status are counted on demand: per-fire triggers cost too much on the hot
    // path, and the history is bounded by retention. A release had them: they are dropped.)
    name: 'task counts by state, kept by triggers',
    up: (db) =>
      db.exec(`
        CREATE TABLE IF NOT EXISTS counts (kind TEXT NOT NULL, key TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (kind, key)) WITHOUT ROWID;
        CREATE TRIGGER IF NOT EXISTS tasks_count_ins AFTER INSERT ON tasks BEGIN
          INSERT INTO counts (kind, key, n) VALUES ('task', NEW.state, 1) ON CONFLICT (kind, key) DO UPDATE SET n = n + 1;
        END;
        CREATE TRIGGER IF NOT EXISTS tasks_count_del AFTER DELETE ON tasks BEGIN
          UPDATE counts SET n = n - 1 WHERE kind = 'task' AND key = OLD.state;
        END;
        CREATE TRIGGER IF NOT EXISTS tasks_count_upd AFTER UPDATE OF state ON tasks WHEN OLD.state <> NEW.state BEGIN
          UPDATE counts SET n = n - 1 WHERE kind = 'task' AND key = OLD.state;
          INSERT INTO counts (kind, key, n) VALUES ('task', NEW.state, 1) ON CONFLICT (kind, key) DO UPDATE SET n = n + 1;
        END;
        DROP TRIGGER IF EXISTS runs_count_ins;
        DROP TRIGGER IF EXISTS runs_count_del;
        DROP TRIGGER IF EXISTS runs_count_upd;
        DELETE FROM counts;
        INSERT INTO counts (kind, key, n) SELECT 'task', state, COUNT(*) FROM tasks GROUP BY state;
      `),
  },
  {
    version: 6,
    // A run id is "<task_id>:<13-digit ms>", so the primary key already keeps each task's runs
    // together in time order, and per-task queries range over it (runRange). The separate index
    // cost a random B-tree insert per fire (measured: a third of the commit's time).
    name: 'drop the runs(task_id) index',
    up: (db) => db.exec('DROP INDEX IF EXISTS runs_task'),
  },
  {
    version: 7,
    // runs_time: the run list across tasks, newest first (GET /xcron/runs); its keys grow with
    // time, so an insert appends at the right edge of the index. runs_fail: failed runs only (the
    // dead-letter list). report_days: the daily report, kept apart from the runs so that it
    // outlives their retention.
    name: 'operator features: one-off run requests, retries, run list indexes, the daily report',
    up: (db) => {
      addColumn(db, 'runs', 'request', 'TEXT');
      addColumn(db, 'runs', 'retried_by', 'TEXT');
      db.exec(`
        CREATE INDEX IF NOT EXISTS runs_time ON runs(scheduled_time, run_id);
        CREATE INDEX IF NOT EXISTS runs_fail ON runs(scheduled_time, run_id) WHERE status = 'FAIL';
        CREATE TABLE IF NOT EXISTS report_days (day INTEGER NOT NULL, k TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (day, k)) WITHOUT ROWID;
      `);
    },
  },
  {
    version: 8,
    // The executor registry (src/store/executors.ts): one row per instance, upserted by each
    // heartbeat; an instance is live while last_heartbeat + ttl_ms is ahead of now.
    name: 'executor registry',
    up: (db) =>
      db.exec(`
        CREATE TABLE IF NOT EXISTS executors (
          grp TEXT NOT NULL,
          address TEXT NOT NULL,
          ttl_ms INTEGER NOT NULL,
          meta TEXT,
          last_heartbeat INTEGER NOT NULL,
          registered_at INTEGER NOT NULL,
          PRIMARY KEY (grp, address)
        ) WITHOUT ROWID;
      `),
  },
  {
    version: 9,
    // Why a paused task is paused (PauseInfo as JSON): the operator's note and who paused it, or
    // the auto-pause reason. NULL for every task that is not paused, and for tasks paused before.
    name: 'tasks.pause: the pause note or the auto-pause reason',
    up: (db) => addColumn(db, 'tasks', 'pause', 'TEXT'),
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** The file's schema version: 0 for a new file. */
export function schemaVersion(db: Database.Database): number {
  const hasMeta = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get();
  if (!hasMeta) return 0;
  const row = db.prepare("SELECT v FROM meta WHERE k = 'schema_version'").get() as { v: string } | undefined;
  return row ? Number(row.v) : 0;
}

/**
 * Runs the migrations above the file's version, each in a transaction that also records its
 * version. Returns the versions applied. A file of a newer schema than this build knows is refused.
 */
export function migrate(db: Database.Database, migrations: readonly Migration[] = MIGRATIONS): number[] {
  const from = schemaVersion(db);
  const latest = migrations.length === 0 ? 0 : migrations[migrations.length - 1]!.version;
  if (from > latest) {
    throw new Error(`the SQLite file has schema version ${from}, but this xcron knows versions up to ${latest}: it was written by a newer xcron`);
  }
  const applied: number[] = [];
  for (const m of migrations) {
    if (m.version <= from) continue;
    db.transaction(() => {
      m.up(db);
      db.prepare("INSERT INTO meta (k, v) VALUES ('schema_version', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v").run(String(m.version));
    })();
    applied.push(m.version);
  }
  return applied;
}
