/**
 * The SQLite store's statements, each prepared once: the fixed ones when the store opens, and the
 * queries whose SQL depends on which filters a call has (due tasks, the outbox, task lists, run
 * pages) on first use of each shape. A list of slots is one JSON parameter (json_each), so the
 * shapes are few and known.
 */
import type Database from 'better-sqlite3';
import { RUN_COLS } from './sqlite-rows.js';

export const PRUNE_BATCH = 1000;

export type Statements = ReturnType<typeof prepareStatements>;

export function prepareStatements(db: Database.Database) {
  return {
    insert: db.prepare(`INSERT INTO tasks (id, slot, type, format, state, next_fire_time, spec, idempotency_key, create_time, update_time, last_fire_time, last_status, run_count, pause) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`),
    byKey: db.prepare('SELECT * FROM tasks WHERE idempotency_key = ?'),
    get: db.prepare('SELECT * FROM tasks WHERE id = ?'),
    deleteTask: db.prepare('DELETE FROM tasks WHERE id = ? RETURNING *'),
    deleteRuns: db.prepare('DELETE FROM runs WHERE run_id > ? AND run_id < ? AND task_id = ?'),
    epoch: db.prepare("SELECT v FROM meta WHERE k = 'epoch'"),
    bumpEpoch: db.prepare("UPDATE meta SET v = CAST(v AS INTEGER) + 1 WHERE k = 'epoch' RETURNING v"),
    uncommitRun: db.prepare("DELETE FROM runs WHERE run_id = ? AND task_id = ? AND scheduled_time = ? AND status = 'PENDING' AND attempts = 0"),
    uncommitTask: db.prepare(
      `UPDATE tasks SET next_fire_time = ?, state = 'active', run_count = run_count - 1, last_fire_time = ?
       WHERE id = ? AND last_fire_time = ? AND next_fire_time IS ? AND state = CASE WHEN ? IS NULL THEN 'completed' ELSE 'active' END`,
    ),
    advance: db.prepare(
      `UPDATE tasks SET next_fire_time = ?, state = CASE WHEN ? IS NULL THEN 'completed' ELSE state END,
         run_count = run_count + ?, last_fire_time = ?, last_status = COALESCE(?, last_status), update_time = ?
       WHERE id = ? AND state = 'active' AND next_fire_time = ?`,
    ),
    insertRun: db.prepare(
      `INSERT OR IGNORE INTO runs (run_id, task_id, slot, node, scheduled_time, start_time, end_time, attempts, status, error, created)
       VALUES (?,?,?,?,?,?,?,0,?,?,?)`,
    ),
    runRunning: db.prepare(
      `UPDATE runs SET status = 'RUNNING', attempts = MAX(attempts, ?), node = COALESCE(?, node), start_time = COALESCE(start_time, ?),
         deadline = CASE WHEN ? = 1 THEN ? ELSE deadline END, http_status = COALESCE(?, http_status)
       WHERE run_id = ? AND status IN ('PENDING', 'RUNNING')`,
    ),
    reportClose: db.prepare(
      `UPDATE runs SET status = ?, end_time = ?, message = ?, output = ?, error = ?, deadline = NULL,
         duration_ms = ? - COALESCE(start_time, scheduled_time), start_time = COALESCE(start_time, ?)
       WHERE run_id = ? AND status IN ('PENDING', 'RUNNING') RETURNING scheduled_time, start_time`,
    ),
    logStats: db.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(CAST(line AS BLOB))), 0) AS bytes, COALESCE(MAX(seq), 0) AS last FROM run_logs WHERE run_id = ?'),
    logInsert: db.prepare('INSERT INTO run_logs (run_id, seq, time, line) VALUES (?,?,?,?)'),
    logRead: db.prepare('SELECT seq, time, line FROM run_logs WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?'),
    secretInit: db.prepare('INSERT OR IGNORE INTO meta (k, v) VALUES (?, ?)'),
    secretGet: db.prepare('SELECT v FROM meta WHERE k = ?'),
    runFinish: db.prepare(
      `UPDATE runs SET status = ?, attempts = MAX(attempts, ?), node = COALESCE(?, node), start_time = COALESCE(start_time, ?), end_time = ?,
         http_status = ?, error = ?, duration_ms = ?, response_body = ?, shards = ?
       WHERE run_id = ? AND status IN ('PENDING', 'RUNNING') RETURNING scheduled_time, start_time`,
    ),
    taskLastStatus: db.prepare('UPDATE tasks SET last_status = ? WHERE id = ?'),
    runLateFacts: db.prepare(
      `UPDATE runs SET attempts = MAX(attempts, ?), node = COALESCE(node, ?), start_time = COALESCE(start_time, ?), http_status = COALESCE(http_status, ?)
       WHERE run_id = ? AND status NOT IN ('PENDING', 'RUNNING')`,
    ),
    replaceSpec: db.prepare('UPDATE tasks SET format = ?, state = ?, next_fire_time = ?, spec = ?, update_time = ?, pause = ? WHERE id = ?'),
    countTrigger: db.prepare('UPDATE tasks SET run_count = run_count + 1, last_fire_time = ?, update_time = ? WHERE id = ?'),
    pruneOld: db.prepare(
      `DELETE FROM runs WHERE run_id IN (
         SELECT run_id FROM runs WHERE created < ? AND status NOT IN ('PENDING', 'RUNNING') LIMIT ${PRUNE_BATCH})`,
    ),
    tasksWithRuns: db.prepare('SELECT id AS task_id FROM tasks WHERE id > ? ORDER BY id LIMIT 200'),
    pruneExcessOfTask: db.prepare(
      `DELETE FROM runs WHERE run_id > ? AND run_id < ? AND task_id = ? AND status NOT IN ('PENDING', 'RUNNING') AND scheduled_time <
         (SELECT scheduled_time FROM runs WHERE run_id > ? AND run_id < ? AND task_id = ? ORDER BY scheduled_time DESC LIMIT 1 OFFSET ?)`,
    ),
    purgeCompletedTasks: db.prepare(
      `DELETE FROM tasks WHERE id IN (
         SELECT id FROM tasks WHERE state = 'completed' AND update_time < ? ORDER BY update_time LIMIT ?) RETURNING id`,
    ),
    taskCounts: db.prepare("SELECT key AS state, n FROM counts WHERE kind = 'task'"),
    runCounts: db.prepare('SELECT status, COUNT(*) AS n FROM runs GROUP BY status'),
    getRun: db.prepare(`SELECT ${RUN_COLS} FROM runs WHERE run_id = ?`),
    listRuns: db.prepare(`SELECT ${RUN_COLS} FROM runs WHERE run_id > ? AND run_id < ? AND task_id = ? ORDER BY scheduled_time DESC LIMIT ?`),
    pageRuns: db.prepare(`SELECT ${RUN_COLS} FROM runs WHERE run_id > ? AND run_id < ? AND task_id = ? ORDER BY scheduled_time DESC, run_id DESC LIMIT ?`),
    pageRunsBefore: db.prepare(
      `SELECT ${RUN_COLS} FROM runs WHERE run_id > ? AND run_id < ? AND task_id = ? AND (scheduled_time < ? OR (scheduled_time = ? AND run_id < ?)) ORDER BY scheduled_time DESC, run_id DESC LIMIT ?`,
    ),
    ping: db.prepare('SELECT 1'),
    setRequest: db.prepare('UPDATE runs SET request = ? WHERE run_id = ?'),
    setRetriedBy: db.prepare('UPDATE runs SET retried_by = ? WHERE run_id = ?'),
    reportAdd: db.prepare('INSERT INTO report_days (day, k, n) VALUES (?,?,?) ON CONFLICT (day, k) DO UPDATE SET n = n + excluded.n'),
    reportRead: db.prepare('SELECT day, k, n FROM report_days WHERE day >= ? AND day <= ? ORDER BY day'),
  };
}

/**
 * Statements by SQL text, each prepared on first use. Only for SQL built from a fixed set of
 * parts (the filters a query has), never from values: values are always parameters.
 */
export class ShapedStatements {
  private readonly byText = new Map<string, Database.Statement>();

  constructor(private readonly db: Database.Database) {}

  get(sql: string): Database.Statement {
    let st = this.byText.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.byText.set(sql, st);
    }
    return st;
  }
}
