/**
 * A schedule in plain language ("At 09:00, Monday through Friday (Europe/Berlin)"), from cronstrue.
 * The expression is read as xcron reads it: 5 fields (minute first), 6 or 7 (seconds first, 7 with
 * a year), Quartz weekday numbers (1 = Sunday) when the expression is in the Quartz dialect, the
 * @-nicknames, `@every <duration>`, and one-shot timestamps ("Once at <ISO time>").
 */
import cronstrue from 'cronstrue';
import { isQuartz, NICKNAMES, parseOneShot } from './schedule.js';
import { ONE_SHOT, type TaskType } from './types.js';

const cache = new Map<string, string | null>();
const CACHE_MAX = 10_000;

/** The description of a schedule, or null when cronstrue cannot describe the expression. */
export function describeSchedule(type: TaskType, format: string, timezone: string): string | null {
  const key = `${type}\u0000${timezone}\u0000${format}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const d = compute(type, format, timezone);
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(key, d);
  return d;
}

function compute(type: TaskType, format: string, timezone: string): string | null {
  try {
    if (type === ONE_SHOT) return `Once at ${new Date(parseOneShot(format)).toISOString()}`;
    const trimmed = format.trim();
    if (/^@every\b/i.test(trimmed)) return `Every ${trimmed.slice('@every'.length).trim()} (from the task's creation)`;
    const nick = trimmed.toLowerCase();
    const expr = Object.hasOwn(NICKNAMES, nick) ? NICKNAMES[nick]! : trimmed;
    const quartz = isQuartz(expr.split(/\s+/));
    const text = cronstrue.toString(expr, { use24HourTimeFormat: true, dayOfWeekStartIndexZero: !quartz, throwExceptionOnParseError: true, locale: 'en' });
    return `${text} (${timezone})`;
  } catch {
    return null;
  }
}
