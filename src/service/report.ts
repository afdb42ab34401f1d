/**
 * A worker's run report (async completion): validated and applied here, for both ways it arrives:
 * `POST /xcron/reportRun` (src/api/runs.ts) and the results queue (./results.ts). The same per-run
 * token rules, the same refusal of a sync run (it takes no report in any phase), the same idempotency: a second
 * identical report is answered "already reported" and changes nothing.
 */
import type { Clock } from '../clock/index.js';
import type { Notifier } from '../cluster/index.js';
import { Codes, XcronError, describe } from '../errors.js';
import type { ReportResult, TaskStore } from '../store/types.js';
import { checkReportToken, isObject, type Run, type RunStatus, type Task } from '../task/index.js';

const RUN_ID_RE = /^[A-Za-z0-9_-]{1,64}:\d{1,16}(?::r\d{1,6})?$/;
const MAX_MESSAGE = 4096;
const MAX_OUTPUT_BYTES = 65_536;
const REPORT_FIELDS = ['run_id', 'token', 'status', 'message', 'output'];

export interface Report {
  run_id: string;
  status: 'SUCCESS' | 'FAIL';
  message: string | null;
  /** The output as JSON text. */
  output: string | null;
}

export interface ReportDeps {
  store: TaskStore;
  clock: Clock;
  notifier: Pick<Notifier, 'runReported'>;
  /** The cluster-wide secret behind X-Xcron-Report-Token. */
  reportSecret: string;
  /** This node closed a run by report: children, alerts and stats act on it (scheduler.reported). */
  onRunClosed(run: Run, task: Task | null): void;
  /** Resolves once this node has recorded the run's callback answer, if that is still in progress here. */
  beforeReport?(runId: string): Promise<void>;
  /**
   * A store shared by nodes: how long (ms) a report for a run that does not await one yet waits for
   * the run's callback answer to be recorded by the node delivering it (a 202 the report overtook).
   * 0 or unset: refused at once (one process: beforeReport waited for this node's own answer).
   */
  answerWaitMs?: number;
}

export interface ReportOutcome {
  run_id: string;
  status: RunStatus;
  /** The run was already closed with this outcome: nothing changed. */
  already: boolean;
}

/** A run id as the API takes it (an unknown shape is "not found"). */
export function runIdOf(v: unknown, field = 'run_id'): string {
  if (v === undefined || v === null || v === '') throw new XcronError(Codes.BAD_JSON, 400, `'${field}' is required`);
  if (typeof v !== 'string') throw new XcronError(Codes.BAD_JSON, 400, `'${field}' must be a string, got ${describe(v)}`);
  if (!RUN_ID_RE.test(v)) throw new XcronError(Codes.TASK_NOT_FOUND, 404, `run ${JSON.stringify(v.slice(0, 100))} not found`);
  return v;
}

export function checkToken(secret: string, runId: string, token: unknown): void {
  if (token === undefined || token === null || token === '') throw new XcronError(Codes.UNAUTHORIZED, 401, "'token' is required: the X-Xcron-Report-Token sent with the callback");
  if (typeof token !== 'string' || !checkReportToken(secret, runId, token)) {
    throw new XcronError(Codes.UNAUTHORIZED, 403, `'token' is not the report token of run ${runId}`);
  }
}

/** Validates a report body {run_id, token, status, message?, output?} and its token. Throws XcronError. */
export function parseReport(body: unknown, secret: string): Report {
  if (!isObject(body)) throw new XcronError(Codes.BAD_JSON, 400, `request body must be a JSON object {run_id, token, status}, got ${describe(body)}`);
  for (const k of Object.keys(body)) {
    if (!REPORT_FIELDS.includes(k)) throw new XcronError(Codes.BAD_JSON, 400, `unknown field '${k}' (known fields: ${REPORT_FIELDS.join(', ')})`);
  }
  const runId = runIdOf(body.run_id);
  checkToken(secret, runId, body.token);
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
  return { run_id: runId, status: body.status, message, output };
}

/** How often a report refused as 'not_awaiting' asks the store again while it waits for the answer. */
const ANSWER_POLL_MS = 50;

function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimer(resolve, ms));
}

/**
 * Applies the report in the store. The store decides atomically whether the run takes a report:
 * only a run that awaits one (its task completes async, or its callback answered 202 and the run
 * has a deadline). A sync run, decided by its callback's answers, is refused in every phase: not
 * sent yet, an attempt in flight, between two attempts. A worker may report before its callback's
 * 202 is recorded; the node delivering the run has recorded its answer already (beforeReport), and
 * with `answerWaitMs` (a store shared by nodes: the run may be delivered by another node) a report
 * refused as 'not_awaiting' asks again until that much time passed, so an overtaken 202 recorded
 * meanwhile still lets it close the run. A run marked between attempts ('retrying') is refused at once.
 */
async function reportInStore(deps: ReportDeps, r: Report): Promise<ReportResult> {
  const req = { run_id: r.run_id, status: r.status, message: r.message, output: r.output };
  let res = await deps.store.reportRun({ ...req, now: deps.clock.now() });
  const until = deps.clock.now() + (deps.answerWaitMs ?? 0);
  while (res.result === 'not_awaiting' && deps.clock.now() < until) {
    await sleep(deps.clock, Math.min(ANSWER_POLL_MS, until - deps.clock.now()));
    res = await deps.store.reportRun({ ...req, now: deps.clock.now() });
  }
  return res;
}

const syncRunRefused = (runId: string): XcronError =>
  new XcronError(
    Codes.RUN_NOT_ASYNC,
    409,
    `run ${runId} is a sync run: its callback's HTTP answer decides it, so it takes no report (to report, create the task with "completion": "async", or answer the callback with 202 Accepted and report after that answer)`,
  );

/** Records a validated report. Throws XcronError (not found, closed otherwise, sync run) or a store error. */
export async function applyReport(deps: ReportDeps, r: Report): Promise<ReportOutcome> {
  await deps.beforeReport?.(r.run_id);
  const res = await reportInStore(deps, r);
  switch (res.result) {
    case 'not_found':
      throw new XcronError(Codes.TASK_NOT_FOUND, 404, `run ${JSON.stringify(r.run_id)} not found`);
    case 'conflict':
      throw new XcronError(Codes.RUN_CLOSED, 409, `run ${r.run_id} is already closed as ${res.run?.status ?? '?'}; a ${r.status} report cannot change it`);
    case 'same':
      return { run_id: r.run_id, status: res.run?.status ?? r.status, already: true };
    case 'retrying':
    case 'not_awaiting':
      // A sync run: its callback's answers decide it (the store refused atomically).
      throw syncRunRefused(r.run_id);
    default: {
      const run = res.run!;
      const task = await deps.store.get(run.task_id).catch(() => null);
      deps.onRunClosed(run, task);
      deps.notifier.runReported?.(run.run_id, run.slot);
      return { run_id: r.run_id, status: run.status, already: false };
    }
  }
}
