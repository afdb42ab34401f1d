/**
 * The SQLite store's writes that take more than one statement, one function each, run as one
 * transaction (`transactions()` wraps each in `db.transaction`). Each takes the prepared
 * statements first; SqliteTaskStore calls them through `transactions()` only.
 */
import type Database from 'better-sqlite3';
import type { Task } from '../task/index.js';
import { pauseColumn, rowToRun, rowToTask, runRange, specOf, taskRow, TASK_ROW_KEY, type RunRow, type TaskInsertRow, type TaskRow } from './sqlite-rows.js';
import { PRUNE_BATCH, type Statements } from './sqlite-statements.js';
import { findCycle } from './child-graph.js';
import { ReportTally } from './report.js';
import type { RetryRequest, RetryResult, CreateResult, FireRequest, FireResult, GraphRefusal, LogCaps, ReportRequest, ReportResult, RunUpdate, TaskChanges, TaskExpectation, TaskStore, UncommitRequest } from './types.js';

/** Rolls back an uncommitFire whose task no longer shows the commit. */
export class NotUndone extends Error {}

export type TriggerRequest = Parameters<TaskStore['commitTrigger']>[0];

function create(st: Statements, t: Task): CreateResult {
  const existing = createRow(st, taskRow(t));
  return existing ? { task: existing, created: false } : { task: t, created: true };
}

/** Inserts a task row; returns the task already holding its idempotency key instead, if any. */
function createRow(st: Statements, row: TaskInsertRow): Task | null {
  const key = row[TASK_ROW_KEY];
  if (key !== null) {
    const existing = st.byKey.get(key) as TaskRow | undefined;
    if (existing) return rowToTask(existing);
  }
  st.insert.run(...row);
  return null;
}

function deleteTask(st: Statements, id: string): Task | null {
  const row = st.deleteTask.get(id) as TaskRow | undefined;
  if (!row) return null;
  st.deleteRuns.run(...runRange(id), id);
  return rowToTask(row);
}

function commitFires(st: Statements, reqs: readonly FireRequest[]): FireResult[] {
  const epoch = Number((st.epoch.get() as { v: string }).v);
  const out: FireResult[] = [];
  let tally: ReportTally | null = null;
  for (const r of reqs) {
    if (r.token !== epoch) {
      out.push('fenced');
      continue;
    }
    const counted = r.run.status === 'PENDING' ? 1 : 0;
    const lastStatus = r.run.status === 'PENDING' ? null : r.run.status;
    const res = st.advance.run(r.next, r.next, counted, r.expected, lastStatus, r.now, r.task_id, r.expected);
    if (res.changes !== 1) {
      out.push(r.retry === true && applied(st, r) ? 'committed' : 'conflict');
      continue;
    }
    const final = r.run.status !== 'PENDING';
    const ins = st.insertRun.run(r.run.run_id, r.task_id, r.slot, r.run.node, r.expected, final ? r.now : null, final ? r.now : null, r.run.status, r.run.error, r.now);
    if (final && ins.changes === 1) (tally ??= new ReportTally()).run(r.run.status, r.expected, null);
    out.push('committed');
  }
  if (tally) addReport(st, tally);
  return out;
}

/** Adds a write's report tallies to the daily report (report_days). */
function addReport(st: Statements, tally: ReportTally): void {
  for (const [day, k, n] of tally.entries()) st.reportAdd.run(day, k, n);
}

/** A retried fire that an earlier call committed already, exactly (FireRequest.retry). */
function applied(st: Statements, r: FireRequest): boolean {
  const row = st.get.get(r.task_id) as TaskRow | undefined;
  if (!row) return false;
  const t = rowToTask(row);
  if (t.last_fire_time !== r.expected) return false;
  if (r.next === null ? t.state !== 'completed' : t.state !== 'active' || t.next_fire_time !== r.next) return false;
  const run = st.getRun.get(r.run.run_id) as RunRow | undefined;
  return run !== undefined && run.task_id === r.task_id && run.node === r.run.node && run.status === r.run.status && run.scheduled_time === r.expected;
}

function uncommitFire(st: Statements, u: UncommitRequest): boolean {
  if (st.uncommitRun.run(u.run_id, u.task_id, u.tick).changes !== 1) return false;
  // The task must still show the commit; otherwise the run's removal is rolled back.
  if (st.uncommitTask.run(u.tick, u.last_fire_time, u.task_id, u.tick, u.next, u.next).changes !== 1) throw new NotUndone();
  return true;
}

function updateTask(st: Statements, id: string, ch: TaskChanges, ex: TaskExpectation): Task | 'conflict' | null | GraphRefusal {
  const row = st.get.get(id) as TaskRow | undefined;
  if (!row) return null;
  const cur = rowToTask(row);
  if (cur.state !== ex.state || cur.next_fire_time !== ex.next_fire_time) return 'conflict';
  // The child graph is checked inside the write transaction: one writer at a time, so no other
  // graph change can land between the check and this write.
  if (ch.on_success) {
    const refusal = findCycle(id, ch.on_success, (c) => {
      const r = st.get.get(c) as TaskRow | undefined;
      return r ? rowToTask(r).on_success : null;
    });
    if (refusal) return refusal;
  }
  const next: Task = { ...cur, ...ch };
  st.replaceSpec.run(next.format, next.state, next.next_fire_time, specOf(next), next.update_time, pauseColumn(next), id);
  return next;
}

function commitTrigger(st: Statements, r: TriggerRequest): FireResult {
  if (st.getRun.get(r.run_id)) return 'conflict';
  const res = st.countTrigger.run(r.scheduled_time, r.now, r.task_id);
  if (res.changes !== 1) return 'conflict';
  st.insertRun.run(r.run_id, r.task_id, r.slot, r.node, r.scheduled_time, null, null, 'PENDING', null, r.now);
  if (r.request) st.setRequest.run(JSON.stringify(r.request), r.run_id);
  return 'committed';
}

function commitRetry(st: Statements, r: RetryRequest): RetryResult {
  const row = st.getRun.get(r.of) as RunRow | undefined;
  if (!row) return { result: 'not_found', run: null };
  const run = rowToRun(row);
  if (run.status !== 'FAIL') return { result: 'not_failed', run };
  if (run.retried_by !== null || st.getRun.get(r.run_id)) return { result: 'retried', run };
  if (st.countTrigger.run(r.scheduled_time, r.now, r.task_id).changes !== 1) return { result: 'task_gone', run };
  st.insertRun.run(r.run_id, r.task_id, r.slot, r.node, r.scheduled_time, null, null, 'PENDING', null, r.now);
  if (run.request) st.setRequest.run(JSON.stringify(run.request), r.run_id);
  st.setRetriedBy.run(r.run_id, r.of);
  return { result: 'committed', run: { ...run, retried_by: r.run_id } };
}

type Started = { scheduled_time: number; start_time: number | null } | undefined;

function updateRuns(st: Statements, ups: readonly RunUpdate[]): void {
  let tally: ReportTally | null = null;
  for (const u of ups) {
    if (u.status === 'RUNNING') {
      const res = st.runRunning.run(u.attempts, u.node ?? null, u.start_time ?? null, u.deadline === undefined ? 0 : 1, u.deadline ?? null, u.http_status ?? null, u.run_id);
      // Closed already (an async worker reported first): keep the outcome, fill in the callback's facts.
      if (res.changes === 0) st.runLateFacts.run(u.attempts, u.node ?? null, u.start_time ?? null, u.http_status ?? null, u.run_id);
    } else {
      const res = st.runFinish.get(u.status, u.attempts, u.node ?? null, u.start_time ?? null, u.end_time ?? null, u.http_status ?? null, u.error ?? null, u.duration_ms ?? null, u.response_body ?? null, u.shards ? JSON.stringify(u.shards) : null, u.run_id) as Started;
      if (res) {
        st.taskLastStatus.run(u.status, u.task_id);
        (tally ??= new ReportTally()).run(u.status, res.scheduled_time, res.start_time);
      }
    }
  }
  if (tally) addReport(st, tally);
}

function pruneExcess(st: Statements, taskIds: readonly string[], maxPerTask: number): number {
  let n = 0;
  for (const id of taskIds) n += st.pruneExcessOfTask.run(...runRange(id), id, ...runRange(id), id, maxPerTask - 1).changes;
  return n;
}

function purgeCompleted(st: Statements, olderThan: number): number {
  const ids = st.purgeCompletedTasks.all(olderThan, PRUNE_BATCH) as { id: string }[];
  for (const { id } of ids) st.deleteRuns.run(...runRange(id), id);
  return ids.length;
}

function reportRun(st: Statements, q: ReportRequest): ReportResult {
  const row = st.getRun.get(q.run_id) as RunRow | undefined;
  if (!row) return { result: 'not_found', run: null };
  const open = row.status === 'PENDING' || row.status === 'RUNNING';
  if (!open) {
    if (q.expire) return { result: 'not_open', run: rowToRun(row) };
    return { result: row.status === q.status ? 'same' : 'conflict', run: rowToRun(row) };
  }
  if (q.expire && (row.deadline === null || row.deadline > q.now)) return { result: 'not_open', run: rowToRun(row) };
  // A report closes only a run that awaits one (an async task's, or one whose callback answered
  // 202: it has a deadline). A sync run is decided by its callback's answers in every phase, so
  // it is refused here, in the transaction that would close it. This one process knows its own
  // retries, so it keeps no retrying mark: every refusal is 'not_awaiting'.
  if (!q.expire && row.deadline === null && !awaitsReport(st, row.task_id)) return { result: 'not_awaiting', run: rowToRun(row) };
  const error = q.status === 'FAIL' ? (q.expire ? 'timeout' : (q.message ?? 'reported FAIL')) : null;
  const closed = st.reportClose.get(q.status, q.now, q.message, q.output, error, q.now, q.now, q.run_id) as Started;
  st.taskLastStatus.run(q.status, row.task_id);
  if (closed) {
    const tally = new ReportTally();
    tally.run(q.status, closed.scheduled_time, closed.start_time);
    addReport(st, tally);
  }
  return { result: 'closed', run: rowToRun(st.getRun.get(q.run_id) as RunRow) };
}

/** The task completes asynchronously (its runs await a report). */
function awaitsReport(st: Statements, taskId: string): boolean {
  const task = st.get.get(taskId) as TaskRow | undefined;
  return task !== undefined && rowToTask(task).completion === 'async';
}

function appendRunLog(st: Statements, runId: string, lines: readonly string[], now: number, caps: LogCaps): { accepted: number; dropped: number } | null {
  if (!st.getRun.get(runId)) return null;
  const stats = st.logStats.get(runId) as { n: number; bytes: number; last: number };
  let { n, bytes, last } = stats;
  let accepted = 0;
  for (const line of lines) {
    const size = Buffer.byteLength(line);
    if (n >= caps.maxLines || bytes + size > caps.maxBytes) break;
    st.logInsert.run(runId, ++last, now, line);
    n++;
    bytes += size;
    accepted++;
  }
  return { accepted, dropped: lines.length - accepted };
}

/** Each write above as one transaction on `db`. */
export function transactions(db: Database.Database, st: Statements) {
  const createTx = db.transaction((t: Task) => create(st, t));
  const createRowTx = db.transaction((r: TaskInsertRow) => createRow(st, r));
  return {
    create: createTx,
    /** Creates of one event-loop turn in one transaction (group commit). */
    createBatch: db.transaction((ts: readonly Task[]) => ts.map((t) => createTx(t))),
    /**
     * Task rows in one transaction (one commit), each in a savepoint of its own: a row that fails
     * is rolled back alone and its error returned in its place; the others commit. Per row: null
     * (inserted), the task holding its idempotency key, or the error.
     */
    createRows: db.transaction((rows: readonly TaskInsertRow[]) =>
      rows.map((r): Task | null | Error => {
        try {
          return createRowTx(r);
        } catch (e) {
          return e instanceof Error ? e : new Error(String(e));
        }
      }),
    ),
    delete: db.transaction((id: string) => deleteTask(st, id)),
    commitFires: db.transaction((reqs: readonly FireRequest[]) => commitFires(st, reqs)),
    uncommitFire: db.transaction((u: UncommitRequest) => uncommitFire(st, u)),
    updateTask: db.transaction((id: string, ch: TaskChanges, ex: TaskExpectation) => updateTask(st, id, ch, ex)),
    commitTrigger: db.transaction((r: TriggerRequest) => commitTrigger(st, r)),
    commitRetry: db.transaction((r: RetryRequest) => commitRetry(st, r)),
    updateRuns: db.transaction((ups: readonly RunUpdate[]) => updateRuns(st, ups)),
    pruneExcess: db.transaction((taskIds: readonly string[], maxPerTask: number) => pruneExcess(st, taskIds, maxPerTask)),
    purgeCompleted: db.transaction((olderThan: number) => purgeCompleted(st, olderThan)),
    reportRun: db.transaction((q: ReportRequest) => reportRun(st, q)),
    appendRunLog: db.transaction((runId: string, lines: readonly string[], now: number, caps: LogCaps) => appendRunLog(st, runId, lines, now, caps)),
  };
}

export type Transactions = ReturnType<typeof transactions>;
