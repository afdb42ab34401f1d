/**
 * Next fire times for the dashboard: a pure calculation over a schedule (no task data), used by the
 * task detail page ("the next five fires") and by the create/edit form's live preview.
 */
import { Codes, XcronError } from '../errors.js';
import { ONE_SHOT, PERIODIC, checkTimezone, parseOneShot, parseSchedule, type TaskType } from '../task/index.js';

export const MAX_PREVIEW = 20;

export interface PreviewQuery {
  type: TaskType;
  format: string;
  timezone: string;
  /**
   * A known fire time of the schedule (an existing task's next_fire_time): the list starts with it
   * and `@every` ticks stay on its lattice. Null: a new task created at `now`.
   */
  from: number | null;
  /** Periodic window (ms epoch), as the task's start_time / end_time. */
  start: number | null;
  end: number | null;
  count: number;
}

/**
 * CPU time one preview may spend (ms). Each search is bounded by the schedule's search horizon;
 * this bounds their sum, so a long list of rare fires stops early (the answer says `truncated`).
 */
export const PREVIEW_BUDGET_MS = 10;

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

export interface Preview {
  /** Fire times, ms epoch, ascending. */
  times: number[];
  /** True when the time budget ended the list before `count` times (or the schedule's end) were found. */
  truncated: boolean;
}

/** The next `count` fire times, fewer when the schedule or window ends or the time budget is spent. */
export function nextFires(q: PreviewQuery, now: number, budgetMs = PREVIEW_BUDGET_MS): Preview {
  if (q.type === ONE_SHOT) return { times: [parseOneShot(q.format)], truncated: false };
  checkTimezone(q.timezone);
  const t0 = cpuMs();
  const anchor = q.from ?? now;
  const sched = parseSchedule(PERIODIC, q.format, q.timezone, anchor, { cache: false });
  const out: number[] = [];
  let t: number | null = q.from ?? sched.next(q.start !== null ? Math.max(now, q.start - 1) : now);
  while (t !== null && out.length < q.count) {
    if (q.end !== null && t > q.end) break;
    out.push(t);
    if (out.length < q.count && cpuMs() - t0 > budgetMs) return { times: out, truncated: true };
    t = sched.next(t);
  }
  return { times: out, truncated: false };
}

const bad = (field: string, what: string): XcronError => new XcronError(Codes.INVALID_OPTION, 400, `invalid '${field}': ${what}`);

function msParam(v: string | undefined, field: string): number | null {
  if (v === undefined || v === '') return null;
  if (!/^\d{1,16}$/.test(v)) throw bad(field, `must be a ms epoch integer, got ${JSON.stringify(v.slice(0, 20))}`);
  return Number(v);
}

/** Reads the query string of GET /ui/api/next-fires. */
export function parsePreviewQuery(get: (name: string) => string | undefined, defaultTimezone: string): PreviewQuery {
  const typeQ = get('type') ?? '1';
  if (typeQ !== '1' && typeQ !== '2') throw new XcronError(Codes.UNSUPPORTED_TYPE, 400, `unsupported task 'type' ${JSON.stringify(typeQ.slice(0, 10))}: expected 1 or 2`);
  const format = get('format') ?? '';
  if (format.trim() === '') throw new XcronError(Codes.BAD_JSON, 400, "'format' is required");
  if (format.length > 256) throw new XcronError(typeQ === '1' ? Codes.CRON_INVALID : Codes.ONESHOT_FORMAT, 400, "'format' is longer than 256 characters");
  const tz = get('timezone');
  const countQ = get('count') ?? '5';
  if (!/^\d{1,3}$/.test(countQ) || Number(countQ) < 1 || Number(countQ) > MAX_PREVIEW) throw bad('count', `must be an integer from 1 to ${MAX_PREVIEW}`);
  return {
    type: typeQ === '1' ? PERIODIC : ONE_SHOT,
    format,
    timezone: tz === undefined || tz === '' ? defaultTimezone : tz.slice(0, 100),
    from: msParam(get('from'), 'from'),
    start: msParam(get('start'), 'start'),
    end: msParam(get('end'), 'end'),
    count: Number(countQ),
  };
}
