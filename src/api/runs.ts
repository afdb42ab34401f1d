/**
 * Asynchronous completion (long-running jobs): reportRun closes a RUNNING run with the worker's
 * outcome; appendRunLog / runLog are the run's rolling execution log. Workers authenticate with
 * the per-run X-Xcron-Report-Token they received with the callback, not with an API token.
 */
import type { Hono } from 'hono';
import { z } from 'zod';
import { Codes, XcronError, describe } from '../errors.js';
import type { AttemptEvent } from '../delivery/index.js';
import { applyReport, checkToken, parseReport, runIdOf } from '../service/report.js';
import { isObject } from '../task/index.js';
import { reply, xcronOperations } from './contract/registry.js';
import { AppendRunLogData, ReportRunData, RunId, RunLogData } from './contract/schemas.js';
import type { RunUpdate } from '../store/types.js';
import type { ApiDeps, RunsDeps } from './deps.js';
import { readJson } from './request.js';
import { runView } from './views.js';

/** The operations of this file (see xcronOperations): under the tag 'async runs' unless they name another. */
const operation = xcronOperations('async runs');

const MAX_LINE = 4096;
const MAX_LINES_PER_CALL = 1000;

const ReportToken = z.string().meta({ description: 'The run\'s report token: the `X-Xcron-Report-Token` header of its callback.' });

export const reportRunOp = operation.report('reportRun', {
  summary: 'Report the outcome of an async run',
  description: 'Closes a RUNNING run with the worker\'s outcome. A repeated report of the same outcome answers "ok (already reported)".',
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
});

export const appendRunLogOp = operation.report('appendRunLog', {
  summary: "Append to a run's execution log",
  description: 'Lines can be appended while the run is RUNNING and after its report. A full log drops lines (`dropped`).',
  body: z
    .strictObject({
      run_id: RunId,
      token: ReportToken,
      lines: z.array(z.string().meta({ description: 'One line; longer than 4096 characters is cut.' })).max(MAX_LINES_PER_CALL),
    })
    .meta({ id: 'AppendRunLogInput' }),
  data: AppendRunLogData,
  errors: [Codes.UNAUTHORIZED, Codes.TASK_NOT_FOUND, Codes.INVALID_OPTION],
});

export const runLogOp = operation.read('runLog', {
  summary: "Read a run's execution log",
  query: z.object({
    run_id: RunId,
    since: z.int().min(0).optional().meta({ description: 'Lines after this sequence number (default 0: from the start).' }),
    limit: z.int().min(1).max(5000).optional().meta({ description: 'At most this many lines (default 500).' }),
  }),
  data: RunLogData,
  errors: [Codes.BAD_JSON, Codes.TASK_NOT_FOUND, Codes.INVALID_OPTION],
});

/**
 * Marks sync runs whose attempt failed with a retry to come in a store several nodes share
 * (RunUpdate.retrying), from the delivery's attempt events: a report for such a run is then refused
 * at once on any node, instead of waiting for an answer that is not a 202 (applyReport). The store
 * clears the mark with the run's next answer (a 202's deadline, or its final outcome). The refusal
 * itself does not depend on the mark: the store refuses a report for any sync run (ReportResult).
 */
export class RetryMarks {
  constructor(private readonly share: (u: RunUpdate) => void) {}

  /** The delivery's attempt observer. */
  observe(e: AttemptEvent): void {
    if (!e.outcome.ok && e.outcome.retryable && e.attempt < e.job.retry.max_attempts) {
      this.share({ run_id: e.job.run_id, task_id: e.job.task_id, status: 'RUNNING', attempts: e.attempt, retrying: true });
    }
  }
}

export function runRoutes(app: Hono, deps: ApiDeps & { runs: RunsDeps }): void {
  const { runs } = deps;

  app.post(reportRunOp.path, async (c) => {
    const report = parseReport(await readJson(c), runs.reportSecret);
    const res = await applyReport({ ...runs, store: deps.store, clock: deps.clock, notifier: deps.notifier }, report);
    return reply(c, reportRunOp, { run_id: res.run_id, status: res.status }, res.already ? 'ok (already reported)' : undefined);
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
