/**
 * Asynchronous completion (long-running jobs): reportRun closes a RUNNING run with the worker's
 * outcome; appendRunLog / runLog are the run's rolling execution log. Workers authenticate with
 * the per-run X-Xcron-Report-Token they received with the callback, not with an API token.
 */
import type { Hono } from 'hono';
import { z } from 'zod';
import { Codes, XcronError, describe } from '../errors.js';
import type { AttemptEvent } from '../delivery/index.js';
import { checkReportToken, isObject } from '../task/index.js';
import { defineOperation, reply } from './contract/registry.js';
import { AppendRunLogData, ReportRunData, RunId, RunLogData } from './contract/schemas.js';
import type { ApiDeps, RunsDeps } from './deps.js';
import { readJson } from './request.js';
import { runView } from './views.js';

const RUN_ID_RE = /^[A-Za-z0-9_-]{1,64}:\d{1,16}(?::r\d{1,6})?$/;
const MAX_MESSAGE = 4096;
const MAX_OUTPUT_BYTES = 65_536;
const MAX_LINE = 4096;
const MAX_LINES_PER_CALL = 1000;

const ReportToken = z.string().meta({ description: 'The run\'s report token: the `X-Xcron-Report-Token` header of its callback.' });

export const reportRunOp = defineOperation({
  method: 'post',
  path: '/xcron/reportRun',
  operationId: 'reportRun',
  tag: 'async runs',
  summary: 'Report the outcome of an async run',
  description: 'Closes a RUNNING run with the worker\'s outcome. A repeated report of the same outcome answers "ok (already reported)".',
  access: 'report',
  body: z
    .strictObject({
      run_id: RunId,
      token: ReportToken,
      status: z.enum(['SUCCESS', 'FAIL']),
      message: z.string().nullable().optional().meta({ description: 'Kept on the run (first 4096 characters); a FAIL\'s message becomes its error.' }),
      output: z.unknown().optional().meta({ description: 'Any JSON, at most 64 KiB as JSON text; kept on the run.' }),
    })
    .meta({ id: 'ReportRunInput' }),
  data: ReportRunData,
  errors: [Codes.UNAUTHORIZED, Codes.TASK_NOT_FOUND, Codes.INVALID_OPTION, Codes.RUN_CLOSED, Codes.RUN_NOT_ASYNC],
  store: 'write',
});

export const appendRunLogOp = defineOperation({
  method: 'post',
  path: '/xcron/appendRunLog',
  operationId: 'appendRunLog',
  tag: 'async runs',
  summary: "Append to a run's execution log",
  description: 'Lines can be appended while the run is RUNNING and after its report. A full log drops lines (`dropped`).',
  access: 'report',
  body: z
    .strictObject({
      run_id: RunId,
      token: ReportToken,
      lines: z.array(z.string().meta({ description: 'One line; longer than 4096 characters is cut.' })).max(MAX_LINES_PER_CALL),
    })
    .meta({ id: 'AppendRunLogInput' }),
  data: AppendRunLogData,
  errors: [Codes.UNAUTHORIZED, Codes.TASK_NOT_FOUND, Codes.INVALID_OPTION],
  store: 'write',
});

export const runLogOp = defineOperation({
  method: 'get',
  path: '/xcron/runLog',
  operationId: 'runLog',
  tag: 'async runs',
  summary: "Read a run's execution log",
  access: 'read',
  query: z.object({
    run_id: RunId,
    since: z.int().min(0).optional().meta({ description: 'Lines after this sequence number (default 0: from the start).' }),
    limit: z.int().min(1).max(5000).optional().meta({ description: 'At most this many lines (default 500).' }),
  }),
  data: RunLogData,
  errors: [Codes.BAD_JSON, Codes.TASK_NOT_FOUND, Codes.INVALID_OPTION],
  store: 'read',
});

/** Runs whose last attempt failed with a retry to come, as the delivery's attempt events show them. */
export class RetryingRuns {
  private readonly ids = new Set<string>();
  constructor(private readonly max = 100_000) {}

  /** The delivery's attempt observer. */
  observe(e: AttemptEvent): void {
    const id = e.job.run_id;
    if (!e.outcome.ok && e.outcome.retryable && e.attempt < e.job.retry.max_attempts) {
      if (this.ids.size >= this.max) this.ids.delete(this.ids.values().next().value!);
      this.ids.add(id);
    } else this.ids.delete(id);
  }

  has(runId: string): boolean {
    return this.ids.has(runId);
  }
}

function runIdOf(v: unknown, field = 'run_id'): string {
  if (v === undefined || v === null || v === '') throw new XcronError(Codes.BAD_JSON, 400, `'${field}' is required`);
  if (typeof v !== 'string') throw new XcronError(Codes.BAD_JSON, 400, `'${field}' must be a string, got ${describe(v)}`);
  if (!RUN_ID_RE.test(v)) throw new XcronError(Codes.TASK_NOT_FOUND, 404, `run ${JSON.stringify(v.slice(0, 100))} not found`);
  return v;
}

function checkToken(secret: string, runId: string, token: unknown): void {
  if (token === undefined || token === null || token === '') throw new XcronError(Codes.UNAUTHORIZED, 401, "'token' is required: the X-Xcron-Report-Token sent with the callback");
  if (typeof token !== 'string' || !checkReportToken(secret, runId, token)) {
    throw new XcronError(Codes.UNAUTHORIZED, 403, `'token' is not the report token of run ${runId}`);
  }
}

/**
 * A sync run is decided by its callback's HTTP answers (and their retries), so once an attempt
 * failed with a retry to come it takes no report: a report accepted between two attempts would
 * close the run while the next attempt still goes out, leaving a record that mixes both. A run
 * awaits a report when its task completes asynchronously, or when a callback answered 202 (the run
 * then has a report deadline); a report may also overtake the first attempt's 202. A finished run
 * is left to the store's answer (same / conflict).
 */
async function refuseSyncRun(deps: ApiDeps & { runs: RunsDeps }, runId: string): Promise<void> {
  if (deps.runs.retrying?.(runId) !== true) return; // an early report can overtake its 202: allowed
  const run = await deps.store.getRun(runId);
  if (!run || (run.status !== 'PENDING' && run.status !== 'RUNNING') || run.deadline !== null) return;
  const task = await deps.store.get(run.task_id);
  if (task?.completion === 'async') return;
  throw new XcronError(
    Codes.RUN_NOT_ASYNC,
    409,
    `run ${runId} is a sync run: its callback's HTTP answer decides it, so it takes no report (to report, create the task with "completion": "async", or answer the callback with 202 Accepted and report after that answer)`,
  );
}

export function runRoutes(app: Hono, deps: ApiDeps & { runs: RunsDeps }): void {
  const { runs } = deps;

  app.post(reportRunOp.path, async (c) => {
    const body = await readJson(c);
    if (!isObject(body)) throw new XcronError(Codes.BAD_JSON, 400, `request body must be a JSON object {run_id, token, status}, got ${describe(body)}`);
    for (const k of Object.keys(body)) {
      if (!['run_id', 'token', 'status', 'message', 'output'].includes(k)) {
        throw new XcronError(Codes.BAD_JSON, 400, `unknown field '${k}' (known fields: run_id, token, status, message, output)`);
      }
    }
    const runId = runIdOf(body.run_id);
    checkToken(runs.reportSecret, runId, body.token);
    if (body.status !== 'SUCCESS' && body.status !== 'FAIL') {
      throw new XcronError(Codes.INVALID_OPTION, 400, `invalid 'status': must be "SUCCESS" or "FAIL", got ${describe(body.status)}`);
    }
    let message: string | null = null;
    if (body.message !== undefined && body.message !== null) {
      if (typeof body.message !== 'string') throw new XcronError(Codes.BAD_JSON, 400, `'message' must be a string, got ${describe(body.message)}`);
      message = body.message.slice(0, MAX_MESSAGE);
    }
    let output: string | null = null;
    if (body.output !== undefined && body.output !== null) {
      output = JSON.stringify(body.output);
      if (Buffer.byteLength(output) > MAX_OUTPUT_BYTES) {
        throw new XcronError(Codes.TOO_LARGE, 413, `'output' is ${Buffer.byteLength(output)} bytes as JSON, over the limit of ${MAX_OUTPUT_BYTES}`);
      }
    }
    await deps.runs.beforeReport?.(runId);
    await refuseSyncRun(deps, runId);
    const res = await deps.store.reportRun({ run_id: runId, status: body.status, message, output, now: deps.clock.now() });
    switch (res.result) {
      case 'not_found':
        throw new XcronError(Codes.TASK_NOT_FOUND, 404, `run ${JSON.stringify(runId)} not found`);
      case 'conflict':
        throw new XcronError(Codes.RUN_CLOSED, 409, `run ${runId} is already closed as ${res.run?.status ?? '?'}; a ${body.status} report cannot change it`);
      case 'same':
        return reply(c, reportRunOp, { run_id: runId, status: res.run?.status ?? body.status }, 'ok (already reported)');
      default: {
        const run = res.run!;
        const task = await deps.store.get(run.task_id).catch(() => null);
        runs.onRunClosed(run, task);
        deps.notifier.runReported?.(run.run_id, run.slot);
        return reply(c, reportRunOp, { run_id: runId, status: run.status });
      }
    }
  });

  app.post(appendRunLogOp.path, async (c) => {
    const body = await readJson(c);
    if (!isObject(body)) throw new XcronError(Codes.BAD_JSON, 400, `request body must be a JSON object {run_id, token, lines}, got ${describe(body)}`);
    for (const k of Object.keys(body)) {
      if (!['run_id', 'token', 'lines'].includes(k)) throw new XcronError(Codes.BAD_JSON, 400, `unknown field '${k}' (known fields: run_id, token, lines)`);
    }
    const runId = runIdOf(body.run_id);
    checkToken(runs.reportSecret, runId, body.token);
    if (!Array.isArray(body.lines)) throw new XcronError(Codes.BAD_JSON, 400, `'lines' must be an array of strings, got ${describe(body.lines)}`);
    if (body.lines.length > MAX_LINES_PER_CALL) throw new XcronError(Codes.INVALID_OPTION, 400, `invalid 'lines': at most ${MAX_LINES_PER_CALL} per call, got ${body.lines.length}`);
    const lines = body.lines.map((l, i) => {
      if (typeof l !== 'string') throw new XcronError(Codes.BAD_JSON, 400, `'lines[${i}]' must be a string, got ${describe(l)}`);
      return l.length > MAX_LINE ? `${l.slice(0, MAX_LINE)}…` : l;
    });
    const res = await deps.store.appendRunLog(runId, lines, deps.clock.now(), runs.logCaps);
    if (!res) throw new XcronError(Codes.TASK_NOT_FOUND, 404, `run ${JSON.stringify(runId)} not found`);
    return reply(c, appendRunLogOp, { run_id: runId, accepted: res.accepted, dropped: res.dropped }, res.dropped > 0 ? `ok (${res.dropped} lines dropped: the run's log is full)` : 'ok');
  });

  app.get(runLogOp.path, async (c) => {
    const runId = runIdOf(c.req.query('run_id'));
    const sinceQ = c.req.query('since');
    let since = 0;
    if (sinceQ !== undefined && sinceQ !== '') {
      if (!/^\d{1,9}$/.test(sinceQ)) throw new XcronError(Codes.INVALID_OPTION, 400, `invalid 'since': must be a line number (integer >= 0), got ${JSON.stringify(sinceQ.slice(0, 20))}`);
      since = Number(sinceQ);
    }
    const limitQ = c.req.query('limit');
    let limit = 500;
    if (limitQ !== undefined && limitQ !== '') {
      if (!/^\d{1,5}$/.test(limitQ) || Number(limitQ) < 1 || Number(limitQ) > 5000) throw new XcronError(Codes.INVALID_OPTION, 400, "invalid 'limit': must be an integer from 1 to 5000");
      limit = Number(limitQ);
    }
    const run = await deps.store.getRun(runId);
    if (!run) throw new XcronError(Codes.TASK_NOT_FOUND, 404, `run ${JSON.stringify(runId)} not found`);
    const lines = await deps.store.readRunLog(runId, since, limit);
    const last = lines[lines.length - 1];
    return reply(c, runLogOp, {
      run_id: runId,
      status: run.status,
      finished: run.status !== 'PENDING' && run.status !== 'RUNNING',
      lines,
      next_since: last ? last.seq : since,
      run: runView(run),
    });
  });
}
