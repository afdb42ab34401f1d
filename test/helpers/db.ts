/** Reads the server's SQLite file directly (a separate read-only connection; WAL allows it while the server runs). */
import Database from 'better-sqlite3';

export interface RunRow {
  run_id: string;
  task_id: string;
  node: string | null;
  scheduled_time: number;
  status: string;
  attempts: number;
  http_status: number | null;
  error: string | null;
}

function withDb<T>(dbFile: string, fn: (db: Database.Database) => T): T {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    return fn(db);
  } finally {
    db.close();
  }
}

/** Rows in the tasks and runs tables. */
export function countRows(dbFile: string): { tasks: number; runs: number } {
  return withDb(dbFile, (db) => ({
    tasks: (db.prepare('SELECT COUNT(*) AS n FROM tasks').get() as { n: number }).n,
    runs: (db.prepare('SELECT COUNT(*) AS n FROM runs').get() as { n: number }).n,
  }));
}

/** A task's run records, oldest first. */
export function runsOf(dbFile: string, taskId: string): RunRow[] {
  return withDb(dbFile, (db) =>
    db
      .prepare('SELECT run_id, task_id, node, scheduled_time, status, attempts, http_status, error FROM runs WHERE task_id = ? ORDER BY scheduled_time, run_id')
      .all(taskId) as RunRow[],
  );
}

/** One run record by its id (the fire id), or undefined. */
export function runById(dbFile: string, runId: string): RunRow | undefined {
  return withDb(dbFile, (db) =>
    db.prepare('SELECT run_id, task_id, node, scheduled_time, status, attempts, http_status, error FROM runs WHERE run_id = ?').get(runId) as RunRow | undefined,
  );
}

/** A task row's stored state (null: no such row). */
export function storedState(dbFile: string, taskId: string): string | null {
  return withDb(dbFile, (db) => (db.prepare('SELECT state FROM tasks WHERE id = ?').get(taskId) as { state: string } | undefined)?.state ?? null);
}
