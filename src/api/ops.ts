/**
 * Operator endpoints: runs across tasks (GET /xcron/runs, also the dead-letter list), replay of
 * failed runs (retryRun, retryRuns), bulk pause/resume/delete by tag or name prefix, and the daily
 * report. Routes parse and check the request and call one service or store operation.
 */
import type { Context, Hono } from 'hono';
import type { z } from 'zod';
import { Codes, XcronError, describe } from '../errors.js';
import { BULK_IDS_SHOWN, bulkTasks, RunReplay, type BulkAction, type TaskService } from '../service/index.js';
import { DAY_MS, dayOf, histPercentile, LATENESS_EDGES } from '../store/report.js';
import type { DueKey, RunsQuery } from '../store/types.js';
import { isObject, tagProblem, type Run, type RunStatus } from '../task/index.js';
import { BulkData, BulkInput, PauseTasksInput, ReportData, ReportQueryParams, RetryRunData, RetryRunInput, RetryRunsData, RetryRunsInput, RunsPageData, RunsQueryParams } from './contract/ops-schemas.js';
import { reply, xcronOperations, type Operation } from './contract/registry.js';
import type { ApiDeps } from './deps.js';
import { decodeCursor, encodeCursor, objectBody, parseLimit } from './request.js';
import { pauseByOf } from './pause.js';
import { runView } from './views.js';

/** The operations of this file (see xcronOperations): under the tag 'runs' unless they name another. */
const operation = xcronOperations('runs');

const RUN_STATUSES: readonly RunStatus[] = ['PENDING', 'RUNNING', 'SUCCESS', 'FAIL', 'SKIPPED', 'MISSED'];
const TASK_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
const RUN_ID_RE = /^[A-Za-z0-9_-]{1,64}:\d{1,16}(?::r\d{1,6})?$/;
const MAX_RETRY_RUNS = 1000;
const MAX_REPORT_DAYS = 366;

const bad = (field: string, why: string): XcronError => new XcronError(Codes.INVALID_OPTION, 400, `invalid '${field}': ${why}`);

/** A JSON object body whose fields are all in `known`. */
function optString(v: unknown, field: string, re: RegExp | null, maxLen = 200): string | null {
  if (v === undefined || v === null || v === '') return null;
  if (typeof v !== 'string') throw new XcronError(Codes.BAD_JSON, 400, `'${field}' must be a string, got ${describe(v)}`);
  if (v.length > maxLen || (re !== null && !re.test(v))) throw bad(field, `not a valid value: ${JSON.stringify(v.slice(0, 80))}`);
  return v;
}

function optTime(v: unknown, field: string): number | null {
  if (v === undefined || v === null || v === '') return null;
  const n = typeof v === 'string' && /^\d{1,16}$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw bad(field, `must be a time in ms since the epoch (an integer >= 0), got ${describe(v)}`);
  return n;
}

function optBool(v: unknown, field: string): boolean | null {
  if (v === undefined || v === null || v === '') return null;
  if (v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  throw bad(field, `must be true or false, got ${describe(v)}`);
}

/** Run cursors: "<scheduled_time>:<run_id>" (base64url). */
function runCursor(raw: string | undefined): DueKey | null {
  const s = decodeCursor(raw);
  if (s === null) return null;
  const m = /^(\d+):(.+)$/.exec(s);
  if (!m) throw bad('cursor', 'not a cursor returned by this API');
  return { time: Number(m[1]), id: m[2]! };
}

/** Runs as shown by GET /xcron/runs: each with its task's name when the task has one. */
async function runsWithNames(deps: ApiDeps, runs: readonly Run[]): Promise<z.output<typeof RunsPageData>['runs']> {
  const names = new Map<string, string | null>();
  for (const r of runs) {
    if (!names.has(r.task_id)) names.set(r.task_id, (await deps.store.get(r.task_id))?.name ?? null);
  }
  return runs.map((r) => {
    const name = names.get(r.task_id) ?? null;
    return name === null ? runView(r) : { ...runView(r), task_name: name };
  });
}

function bulkSelector(body: Record<string, unknown>): { tag: string | null; namePrefix: string | null } {
  const tag = body.tag === undefined || body.tag === null ? null : body.tag;
  if (tag !== null) {
    const why = tagProblem(tag);
    if (why !== null) throw bad('tag', why);
  }
  const namePrefix = optString(body.name_prefix, 'name_prefix', null);
  if ((tag === null) === (namePrefix === null)) {
    throw new XcronError(Codes.BAD_JSON, 400, "give exactly one selector: 'tag' (a task tag) or 'name_prefix' (a non-empty task name prefix)");
  }
  return { tag: tag as string | null, namePrefix };
}

export const runsOp = operation.read('listRuns', {
  path: '/xcron/runs',
  summary: 'Runs across tasks',
  description: 'Run records of every task, newest first (scheduled_time, then run_id), each with its task\'s name. `status=FAIL&replayed=false` is the dead-letter list.',
  query: RunsQueryParams,
  data: RunsPageData,
  errors: [Codes.INVALID_OPTION, Codes.BAD_JSON],
});

export const retryRunOp = operation.change('retryRun', {
  summary: 'Deliver a failed run again',
  description: 'A finished FAIL run is delivered again as the new run `<run_id>:r<N>` (a new attempt series) with its original one-off body, if any; the callback keeps the original fire id.',
  body: RetryRunInput,
  data: RetryRunData,
  errors: [Codes.BAD_JSON, Codes.RUN_NOT_FOUND, Codes.RUN_NOT_FAILED, Codes.RUN_RETRIED, Codes.TASK_NOT_FOUND],
});

export const retryRunsOp = operation.change('retryRuns', {
  summary: 'Deliver failed runs again',
  description: 'Retries the newest matching FAIL runs not retried yet, up to `limit` (at most 1,000 per call); `remaining` says how many more match, for another call. `dry_run` only lists them.',
  body: RetryRunsInput,
  data: RetryRunsData,
  errors: [Codes.BAD_JSON, Codes.INVALID_OPTION],
});

const bulkOp = (operationId: string, summary: string, body: typeof BulkInput | typeof PauseTasksInput = BulkInput): Operation<typeof BulkData> =>
  operation.change(operationId, {
    tag: 'tasks',
    summary,
    description: 'Acts on every task selected by `tag` or `name_prefix` (exactly one), all of them, in pages of 500; `dry_run` shows what would change.',
    body,
    data: BulkData,
    errors: [Codes.BAD_JSON, Codes.INVALID_OPTION],
  });
export const pauseTasksOp = bulkOp('pauseTasks', 'Pause tasks in bulk', PauseTasksInput);
export const resumeTasksOp = bulkOp('resumeTasks', 'Resume tasks in bulk');
export const deleteTasksOp = bulkOp('deleteTasks', 'Delete tasks in bulk');

export const reportOp = operation.read('dailyReport', {
  path: '/xcron/report',
  tag: 'operations',
  summary: 'Daily run report',
  description: 'Per UTC day: runs by final status and lateness p50/p99 (upper edges of fixed buckets), kept apart from the run records.',
  query: ReportQueryParams,
  data: ReportData,
  errors: [Codes.INVALID_OPTION],
});

export function opsRoutes(app: Hono, deps: ApiDeps & { service: TaskService }): void {
  const replay = new RunReplay({ store: deps.store, notifier: deps.notifier, clock: deps.clock, nodeId: deps.nodeId });

  app.get(runsOp.path, async (c) => {
    const statusQ = c.req.query('status');
    if (statusQ !== undefined && statusQ !== '' && !(RUN_STATUSES as readonly string[]).includes(statusQ)) {
      throw bad('status', `must be one of ${RUN_STATUSES.join(', ')}, got ${JSON.stringify(statusQ.slice(0, 40))}`);
    }
    const q: RunsQuery = {
      status: statusQ ? (statusQ as RunStatus) : null,
      from: optTime(c.req.query('from'), 'from'),
      to: optTime(c.req.query('to'), 'to'),
      task_id: optString(c.req.query('task_id'), 'task_id', TASK_ID_RE),
      namePrefix: optString(c.req.query('name_prefix'), 'name_prefix', null),
      replayed: optBool(c.req.query('replayed'), 'replayed'),
      before: runCursor(c.req.query('cursor')),
      limit: parseLimit(c.req.query('limit'), 50, 1000) + 1,
    };
    const limit = q.limit - 1;
    const rows = await deps.store.queryRuns(q);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return reply(c, runsOp, { runs: await runsWithNames(deps, page), next_cursor: rows.length > limit && last ? encodeCursor(`${last.scheduled_time}:${last.run_id}`) : null });
  });

  app.post(retryRunOp.path, async (c) => {
    const body = await objectBody(c, ['run_id']);
    if (body.run_id === undefined || body.run_id === null || body.run_id === '') throw new XcronError(Codes.BAD_JSON, 400, "'run_id' is required");
    if (typeof body.run_id !== 'string') throw new XcronError(Codes.BAD_JSON, 400, `'run_id' must be a string, got ${describe(body.run_id)}`);
    if (!RUN_ID_RE.test(body.run_id)) throw new XcronError(Codes.RUN_NOT_FOUND, 404, `run ${JSON.stringify(body.run_id.slice(0, 100))} not found`);
    return reply(c, retryRunOp, await replay.retry(body.run_id));
  });

  app.post(retryRunsOp.path, async (c) => {
    const body = await objectBody(c, ['status', 'task_id', 'name_prefix', 'from', 'to', 'limit', 'dry_run']);
    if (body.status !== undefined && body.status !== null && body.status !== 'FAIL') throw bad('status', `only "FAIL" runs can be retried, got ${describe(body.status)}`);
    let limit = 100;
    if (body.limit !== undefined && body.limit !== null) {
      if (typeof body.limit !== 'number' || !Number.isInteger(body.limit) || body.limit < 1 || body.limit > MAX_RETRY_RUNS) throw bad('limit', `must be an integer from 1 to ${MAX_RETRY_RUNS}, got ${describe(body.limit)}`);
      limit = body.limit;
    }
    const filter = {
      task_id: optString(body.task_id, 'task_id', TASK_ID_RE),
      namePrefix: optString(body.name_prefix, 'name_prefix', null),
      from: optTime(body.from, 'from'),
      to: optTime(body.to, 'to'),
    };
    if (typeof body.from === 'string' || typeof body.to === 'string') throw bad(typeof body.from === 'string' ? 'from' : 'to', 'must be a number (ms since the epoch)');
    const dryRun = optBool(body.dry_run, 'dry_run') ?? false;
    const res = await replay.retryMany(filter, limit, dryRun);
    const left = res.remaining > 0 ? ` (${res.remaining}${res.remaining_capped ? '+' : ''} more FAIL runs match: call again to retry them)` : '';
    return reply(c, retryRunsOp, res, `ok${left}`);
  });

  const bulk = (op: Operation<typeof BulkData>, action: BulkAction): void => {
    app.post(op.path, async (c) => {
      const body = await objectBody(c, action === 'pause' ? ['tag', 'name_prefix', 'dry_run', 'note'] : ['tag', 'name_prefix', 'dry_run']);
      const sel = bulkSelector(body);
      const dryRun = optBool(body.dry_run, 'dry_run') ?? false;
      const res = await bulkTasks(deps.service, deps.store, action, sel, dryRun, pauseByOf(c, body.note));
      const note = res.count > BULK_IDS_SHOWN ? ` (task_ids lists the first ${BULK_IDS_SHOWN})` : '';
      return reply(c, op, { ...res, dry_run: dryRun }, `ok${note}`);
    });
  };
  bulk(pauseTasksOp, 'pause');
  bulk(resumeTasksOp, 'resume');
  bulk(deleteTasksOp, 'delete');

  app.get(reportOp.path, async (c) => {
    const daysQ = c.req.query('days');
    let days = 30;
    if (daysQ !== undefined && daysQ !== '') {
      if (!/^\d{1,3}$/.test(daysQ) || Number(daysQ) < 1 || Number(daysQ) > MAX_REPORT_DAYS) throw bad('days', `must be an integer from 1 to ${MAX_REPORT_DAYS}, got ${JSON.stringify(daysQ.slice(0, 20))}`);
      days = Number(daysQ);
    }
    const today = dayOf(deps.clock.now());
    const stored = new Map((await deps.store.reportDays(today - days + 1, today)).map((d) => [d.day, d.counts]));
    const out: z.output<typeof ReportData>['days'] = [];
    for (let d = today - days + 1; d <= today; d++) {
      const k = stored.get(d) ?? {};
      const success = k.SUCCESS ?? 0;
      const fail = k.FAIL ?? 0;
      out.push({
        date: new Date(d * DAY_MS).toISOString().slice(0, 10),
        success,
        fail,
        skipped: k.SKIPPED ?? 0,
        missed: k.MISSED ?? 0,
        success_rate: success + fail === 0 ? null : success / (success + fail),
        lateness_p50_ms: histPercentile(k, 0.5),
        lateness_p99_ms: histPercentile(k, 0.99),
      });
    }
    return reply(c, reportOp, { days: out, lateness_bucket_edges_ms: [...LATENESS_EDGES] });
  });
}
