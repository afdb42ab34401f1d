/**
 * Schedule parsing and the pure next-fire calculation. croner does the calendar work (with the
 * task's timezone); `@every` and one-shot timestamps are computed here. Never adds intervals to
 * "now": `@every` ticks are anchored on the task's creation time.
 */
import { Cron, CronPattern, type CronOptions } from 'croner';
import { Codes, XcronError, badInput } from '../errors.js';
import { ONE_SHOT, type TaskType } from './types.js';

export interface Schedule {
  /** The first fire time strictly after `afterMs`, or null when there is none. */
  next(afterMs: number): number | null;
}

export const NICKNAMES: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
export const MIN_EVERY_MS = 1000;
export const MAX_EVERY_MS = 366 * 86_400_000;

/** Parses `@every 1h30m` style durations into ms; throws 1005 with the reason. */
export function parseEvery(format: string): number {
  const rest = format.slice('@every'.length).trim().toLowerCase();
  if (rest === '') throw cronError(format, "'@every' needs a duration such as '30s' or '1h30m'");
  const re = /(\d+)(ms|s|m|h|d)/gy;
  let total = 0;
  let pos = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(rest)) !== null) {
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    pos = re.lastIndex;
  }
  if (pos !== rest.length) {
    throw cronError(format, `cannot read duration ${JSON.stringify(rest)}: use units ms, s, m, h, d (e.g. '1h30m')`);
  }
  if (total < MIN_EVERY_MS) throw cronError(format, `'@every' interval must be at least 1s`);
  if (total > MAX_EVERY_MS) throw cronError(format, `'@every' interval must be at most 366d`);
  return total;
}

function cronError(format: string, reason: string): XcronError {
  return badInput(Codes.CRON_INVALID, `invalid cron expression ${JSON.stringify(format)}: ${reason}`);
}

/** Throws 1006 unless tz is a timezone the runtime knows. */
const tzCache = new Map<string, string>();

export function checkTimezone(tz: string): string {
  const hit = tzCache.get(tz);
  if (hit !== undefined) return hit;
  try {
    const resolved = new Intl.DateTimeFormat('en-US', { timeZone: tz }).resolvedOptions().timeZone;
    if (tzCache.size < 10_000) tzCache.set(tz, resolved);
    return resolved;
  } catch {
    throw badInput(Codes.TIMEZONE, `unknown timezone ${JSON.stringify(tz)} (expected an IANA name such as 'Asia/Shanghai' or 'UTC')`);
  }
}

/**
 * True when the expression is in the Quartz dialect: it has 7 fields (trailing year) or uses '?'.
 * In that dialect weekday numbers run 1 = Sunday … 7 = Saturday; otherwise 0/7 = Sunday.
 */
export function isQuartz(fields: string[]): boolean {
  return fields.length === 7 || fields.some((f) => f.includes('?'));
}

/**
 * How far ahead a cron search looks: the calendar years of the search start (minus one, for
 * timezones west of UTC) to this many years after it. A time further away counts as "never"
 * (Quartz uses the same 100-year horizon). Without the bound, an expression that never matches
 * inside an explicit year range (`0 0 0 31 2 ? 2027-9999`) makes croner walk every listed year:
 * 100+ ms of main-thread time per search, from a single request.
 */
export const SEARCH_HORIZON_YEARS = 100;

/** A validated expression: its first six croner fields and the years its year field allows. */
interface Compiled {
  /** `sec min hour dom mon dow`, as croner reads them. */
  fields6: string;
  /** Allowed years as inclusive ranges, ascending; null: any year. */
  years: [number, number][] | null;
  opts: CronOptions;
  /** The croner instance of the window that holds the last search start. */
  win: { from: number; to: number; cron: Cron | null } | null;
}

const cronCache = new Map<string, Compiled>();

/**
 * The last (after -> next) answer of each compiled expression: thousands of tasks sharing one
 * expression fire at the same tick and ask the same question; croner answers it once.
 */
const lastNext = new WeakMap<Cron, { after: number; next: number | null }>();

function nextRunMemo(cron: Cron, after: number): number | null {
  const hit = lastNext.get(cron);
  if (hit && hit.after === after) return hit.next;
  const d = cron.nextRun(new Date(after));
  const next = d ? d.getTime() : null;
  lastNext.set(cron, { after, next });
  return next;
}
const CRON_CACHE_MAX = 10_000;

/** The years of `c` inside [lo, hi] as a croner year field ("2026-2126", "2028,2032"), or null when none. */
function yearField(c: Compiled, lo: number, hi: number): string | null {
  const parts: string[] = [];
  for (const [a, b] of c.years ?? [[1, 9999]]) {
    const x = Math.max(a, lo);
    const y = Math.min(b, hi);
    if (x <= y) parts.push(x === y ? String(x) : `${x}-${y}`);
  }
  return parts.length > 0 ? parts.join(',') : null;
}

/** The first fire strictly after `after` within the search horizon, or null. */
function windowedNext(c: Compiled, after: number): number | null {
  const w = c.win;
  let cron: Cron | null;
  if (w !== null && after >= w.from && after < w.to) cron = w.cron;
  else {
    const y = new Date(after).getUTCFullYear();
    const field = Number.isFinite(y) ? yearField(c, Math.max(1, y - 1), Math.min(9999, y + SEARCH_HORIZON_YEARS)) : null;
    cron = field === null ? null : new Cron(`${c.fields6} ${field}`, c.opts);
    c.win = { from: Date.UTC(y, 0, 1), to: Date.UTC(y + 1, 0, 1), cron };
  }
  return cron === null ? null : nextRunMemo(cron, after);
}

function compileCron(format: string, tz: string, probeFrom: number, cache: boolean): Compiled {
  const key = `${tz}\u0000${format}`;
  const hit = cronCache.get(key);
  if (hit) return hit;
  const trimmed = format.trim();
  const nick = trimmed.toLowerCase();
  const expr = Object.hasOwn(NICKNAMES, nick) ? NICKNAMES[nick]! : trimmed; // not NICKNAMES[x]: 'constructor' is on every object
  if (expr.startsWith('@')) throw cronError(format, `unknown nickname ${JSON.stringify(trimmed)} (known: ${Object.keys(NICKNAMES).join(' ')} and '@every <duration>')`);
  const fields = expr.split(/\s+/);
  if (fields.length < 5 || fields.length > 7) {
    throw cronError(format, `expected 5, 6 or 7 space-separated fields, got ${fields.length}`);
  }
  fields.forEach((f, i) => {
    if (!/^[0-9A-Za-z*?,/#-]+$/.test(f)) {
      throw cronError(format, `field ${i + 1} (${JSON.stringify(f.slice(0, 20))}) contains characters that are not allowed in a cron field (allowed: digits, names, * ? , / - # L W)`);
    }
  });
  const alternativeWeekdays = isQuartz(fields);
  const opts: CronOptions = { paused: true, timezone: tz, sloppyRanges: true, alternativeWeekdays, legacyMode: true };
  let pattern: CronPattern;
  try {
    pattern = new CronPattern(expr, tz, { alternativeWeekdays, sloppyRanges: true });
  } catch (e) {
    throw cronError(format, (e as Error).message.replace(/^CronPattern: /, ''));
  }
  let years: [number, number][] | null = null;
  if (!pattern.starYear) {
    years = [];
    const y = pattern.year;
    for (let i = 1; i < y.length; i++) {
      if (y[i] !== 1) continue;
      const last = years[years.length - 1];
      if (last && last[1] === i - 1) last[1] = i;
      else years.push([i, i]);
    }
  }
  const six = fields.length === 5 ? ['0', ...fields] : fields.slice(0, 6);
  const c: Compiled = { fields6: six.join(' '), years, opts, win: null };
  try {
    // Checked once per compiled expression (not on every next-fire computation).
    if (windowedNext(c, probeFrom) === null) throw cronError(format, `the expression never fires after now (within ${SEARCH_HORIZON_YEARS} years)`);
  } catch (e) {
    if (e instanceof XcronError) throw e;
    throw cronError(format, (e as Error).message.replace(/^Cron(?:Pattern|Options)?: /, ''));
  }
  if (!cache) return c;
  if (cronCache.size >= CRON_CACHE_MAX) cronCache.clear();
  cronCache.set(key, c);
  return c;
}

/**
 * Builds the schedule of a task. `anchorMs` anchors `@every` ticks (the creation time).
 * Throws XcronError 1001/1005/1006 on a bad format. `cache: false` leaves the compiled expression
 * out of the shared cache (previews of expressions that no task uses).
 */
export function parseSchedule(type: TaskType, format: string, tz: string, anchorMs: number, { cache = true }: { cache?: boolean } = {}): Schedule {
  if (type === ONE_SHOT) {
    const at = parseOneShot(format);
    return { next: (after) => (at > after ? at : null) };
  }
  checkTimezone(tz);
  const trimmed = format.trim();
  if (/^@every\b/i.test(trimmed)) {
    const iv = parseEvery(trimmed);
    return {
      next: (after) => {
        const k = after < anchorMs ? 1 : Math.floor((after - anchorMs) / iv) + 1;
        return anchorMs + k * iv;
      },
    };
  }
  const c = compileCron(trimmed, tz, anchorMs, cache);
  return { next: (after) => windowedNext(c, after) };
}

/** One-shot format: 10-digit unix seconds or 13-digit unix milliseconds. Returns ms. Throws 1001. */
export function parseOneShot(format: string): number {
  const s = format.trim();
  if (!/^\d+$/.test(s)) {
    throw badInput(Codes.ONESHOT_FORMAT, `one-shot 'format' must be a unix timestamp in seconds (10 digits) or milliseconds (13 digits), got ${JSON.stringify(format.slice(0, 40))}`);
  }
  if (s.length === 10) return Number(s) * 1000;
  if (s.length === 13) return Number(s);
  throw badInput(Codes.ONESHOT_FORMAT, `one-shot 'format' must be a unix timestamp in seconds (10 digits) or milliseconds (13 digits), got ${s.length} digits: ${JSON.stringify(s.slice(0, 40))}`);
}
