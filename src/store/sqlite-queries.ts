/**
 * SQL of the SQLite store's filtered reads whose shape depends on the filters given (task lists,
 * runs across tasks). Values are always parameters; only the fixed parts named here (and run
 * statuses from the fixed list) go into the SQL text, so the shapes are few and each is prepared once.
 */
import { RUN_COLS } from './sqlite-rows.js';
import type { ListTasksQuery, RunsQuery } from './types.js';

const STATUSES = new Set(['PENDING', 'RUNNING', 'SUCCESS', 'FAIL', 'SKIPPED', 'MISSED']);
const R_COLS = RUN_COLS.split(', ')
  .map((c) => `r.${c}`)
  .join(', ');

export interface Query {
  sql: string;
  params: unknown[];
}

export function tasksQuery(q: ListTasksQuery): Query {
  const where: string[] = [];
  const params: unknown[] = [];
  if (q.state) {
    where.push('state = ?');
    params.push(q.state);
  }
  if (q.after) {
    where.push('id > ?');
    params.push(q.after);
  }
  if (q.namePrefix) {
    where.push("json_extract(spec, '$.name') >= ? AND json_extract(spec, '$.name') < ?");
    params.push(q.namePrefix, `${q.namePrefix}\uffff`);
  }
  if (q.lastStatus) {
    where.push('last_status = ?');
    params.push(q.lastStatus);
  }
  if (q.tag) {
    where.push("EXISTS (SELECT 1 FROM json_each(spec, '$.tags') WHERE value = ?)");
    params.push(q.tag);
  }
  params.push(q.limit);
  return { sql: `SELECT * FROM tasks ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT ?`, params };
}

/**
 * Runs across tasks, newest first. A status filter is written into the SQL (from the fixed list),
 * so that a FAIL filter reads the failed-runs index (runs_fail) and PENDING/RUNNING the outbox's.
 */
export function runsQuery(q: RunsQuery): Query {
  const where: string[] = [];
  const params: unknown[] = [];
  let from = 'runs r';
  if (q.status !== null) {
    if (!STATUSES.has(q.status)) throw new Error(`unknown run status ${q.status}`);
    where.push(q.status === 'PENDING' || q.status === 'RUNNING' ? `r.status IN ('PENDING', 'RUNNING') AND r.status = '${q.status}'` : `r.status = '${q.status}'`);
  }
  if (q.from !== null) {
    where.push('r.scheduled_time >= ?');
    params.push(q.from);
  }
  if (q.to !== null) {
    where.push('r.scheduled_time <= ?');
    params.push(q.to);
  }
  if (q.task_id !== null) {
    // The primary-key range of the task's runs (see runRange), then the exact task.
    where.push('r.run_id > ? AND r.run_id < ? AND r.task_id = ?');
    params.push(`${q.task_id}:`, `${q.task_id};`, q.task_id);
  }
  if (q.namePrefix !== null) {
    from = 'runs r JOIN tasks t ON t.id = r.task_id';
    where.push("json_extract(t.spec, '$.name') >= ? AND json_extract(t.spec, '$.name') < ?");
    params.push(q.namePrefix, `${q.namePrefix}\uffff`);
  }
  if (q.replayed !== null) where.push(q.replayed ? 'r.retried_by IS NOT NULL' : 'r.retried_by IS NULL');
  if (q.before !== null) {
    where.push('(r.scheduled_time < ? OR (r.scheduled_time = ? AND r.run_id < ?))');
    params.push(q.before.time, q.before.time, q.before.id);
  }
  params.push(q.limit);
  const sql = `SELECT ${R_COLS} FROM ${from} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY r.scheduled_time DESC, r.run_id DESC LIMIT ?`;
  return { sql, params };
}
