/**
 * Schedule parsing and the pure next-fire calculation. croner does the calendar work (with the
 * task's timezone); `@every` and one-shot timestamps are computed here. Never adds intervals to
 * "now": `@every` ticks are anchored on the task's creation time.
 */
import { Cron } from 'croner';
import { Codes, XcronError, badInput } from '../errors.js';
import { ONE_SHOT, type TaskType } from './types.js';

export interface Schedule {
  /** The first fire time strictly after `afterMs`, or null when there is none. */
  next(afterMs: number): number | null;
}

const NICKNAMES: Record<string, string> = {
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

const cronCache = new Map<string, Cron>();

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

function compileCron(format: string, tz: string, probeFrom: number): Cron {
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
  let cron: Cron;
  try {
    cron = new Cron(expr, {
      paused: true,
      timezone: tz,
      sloppyRanges: true,
      alternativeWeekdays: isQuartz(fields),
      legacyMode: true,
    });
  } catch (e) {
    throw cronError(format, (e as Error).message.replace(/^CronPattern: /, ''));
  }
  // Checked once per compiled expression (not on every next-fire computation).
  if (cron.nextRun(new Date(probeFrom)) === null) throw cronError(format, 'the expression never fires after now');
  if (cronCache.size >= CRON_CACHE_MAX) cronCache.clear();
  cronCache.set(key, cron);
  return cron;
}

/**
 * Builds the schedule of a task. `anchorMs` anchors `@every` ticks (the creation time).
 * Throws XcronError 1001/1005/1006 on a bad format.
 */
export function parseSchedule(type: TaskType, format: string, tz: string, anchorMs: number): Schedule {
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
  const cron = compileCron(trimmed, tz, anchorMs);
  return { next: (after) => nextRunMemo(cron, after) };
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
