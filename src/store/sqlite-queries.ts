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

/** A query's WHERE clauses and their parameters, in order. */
class Filters {
  private readonly clauses: string[] = [];
  readonly params: unknown[] = [];

  /** Adds the clause `sql` with the values of its `?` placeholders. */
  add(sql: string, ...params: unknown[]): void {
    this.clauses.push(sql);
    this.params.push(...params);
  }

  /** The WHERE part ('' without a clause). */
  where(): string {
    return this.clauses.length ? `WHERE ${this.clauses.join(' AND ')}` : '';
  }
}

export function tasksQuery(q: ListTasksQuery): Query {
  const f = new Filters();
  if (q.state) f.add('state = ?', q.state);
  if (q.after) f.add('id > ?', q.after);
  if (q.namePrefix) f.add("json_extract(spec, '$.name') >= ? AND json_extract(spec, '$.name') < ?", q.namePrefix, `${q.namePrefix}\uffff`);
  if (q.lastStatus) f.add('last_status = ?', q.lastStatus);
  if (q.tag) f.add("EXISTS (SELECT 1 FROM json_each(spec, '$.tags') WHERE value = ?)", q.tag);
  return { sql: `SELECT * FROM tasks ${f.where()} ORDER BY id LIMIT ?`, params: [...f.params, q.limit] };
}

/**
 * Runs across tasks, newest first. A status filter is written into the SQL (from the fixed list),
 * so that a FAIL filter reads the failed-runs index (runs_fail) and PENDING/RUNNING the outbox's.
 */
export function runsQuery(q: RunsQuery): Query {
  const f = new Filters();
  let from = 'runs r';
  if (q.status !== null) {
    if (!STATUSES.has(q.status)) throw new Error(`unknown run status ${q.status}`);
    f.add(q.status === 'PENDING' || q.status === 'RUNNING' ? `r.status IN ('PENDING', 'RUNNING') AND r.status = '${q.status}'` : `r.status = '${q.status}'`);
  }
  if (q.from !== null) f.add('r.scheduled_time >= ?', q.from);
  if (q.to !== null) f.add('r.scheduled_time <= ?', q.to);
  // The primary-key range of the task's runs (see runRange), then the exact task.
  if (q.task_id !== null) f.add('r.run_id > ? AND r.run_id < ? AND r.task_id = ?', `${q.task_id}:`, `${q.task_id};`, q.task_id);
  if (q.namePrefix !== null) {
    from = 'runs r JOIN tasks t ON t.id = r.task_id';
    f.add("json_extract(t.spec, '$.name') >= ? AND json_extract(t.spec, '$.name') < ?", q.namePrefix, `${q.namePrefix}\uffff`);
  }
  if (q.replayed !== null) f.add(q.replayed ? 'r.retried_by IS NOT NULL' : 'r.retried_by IS NULL');
  if (q.before !== null) f.add('(r.scheduled_time < ? OR (r.scheduled_time = ? AND r.run_id < ?))', q.before.time, q.before.time, q.before.id);
  const sql = `SELECT ${R_COLS} FROM ${from} ${f.where()} ORDER BY r.scheduled_time DESC, r.run_id DESC LIMIT ?`;
  return { sql, params: [...f.params, q.limit] };
}
