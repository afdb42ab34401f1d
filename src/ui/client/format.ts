/** Formatting of times, numbers and schedules for display (the browser's local time zone). */
import type { TaskView } from './types.js';

export const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** 2030-01-01 08:00:30(.250): local time, milliseconds only when there are some. */
export function fmtTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  const d = new Date(ms);
  let s = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  if (d.getMilliseconds()) s += `.${pad(d.getMilliseconds(), 3)}`;
  return s;
}

/** The value of a datetime-local input for `ms` (local time, whole seconds). */
export function localInputValue(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** HH:MM:SS (chart axes). */
export function clockTime(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "in 5s", "3m ago", "now". */
export function rel(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '';
  const diff = ms - Date.now();
  const a = Math.abs(diff);
  if (a < 1000) return diff >= 0 ? 'now' : 'just now';
  let s: string;
  if (a < 60_000) s = `${Math.round(a / 1000)}s`;
  else if (a < 3_600_000) s = `${Math.round(a / 60_000)}m`;
  else if (a < 86_400_000) s = `${(a / 3_600_000).toFixed(1).replace(/\.0$/, '')}h`;
  else s = `${(a / 86_400_000).toFixed(1).replace(/\.0$/, '')}d`;
  return diff >= 0 ? `in ${s}` : `${s} ago`;
}

export function fmtNum(v: number | string | null | undefined, digits?: number): string {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  if (typeof v !== 'number') return String(v);
  return digits === undefined ? v.toLocaleString() : v.toFixed(digits);
}

export function fmtMs(v: number | null | undefined): string {
  if (v === null || v === undefined) return '—';
  if (v >= 10_000) return `${(v / 1000).toFixed(1)} s`;
  return `${Math.round(v)} ms`;
}

export const json = (v: unknown): string => JSON.stringify(v, null, 2);

/** A one-shot task's format (unix seconds, or milliseconds when 13 digits) as ms epoch. */
export function oneShotMs(format: string): number {
  const s = String(format).trim();
  return s.length === 13 ? Number(s) : Number(s) * 1000;
}

export const schedText = (t: Pick<TaskView, 'type' | 'format'>): string => (t.type === 2 ? `once at ${fmtTime(oneShotMs(t.format))}` : t.format);

/** This browser's IANA time zone ('UTC' when it cannot tell). */
export function browserZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

const zoneFormats = new Map<string, Intl.DateTimeFormat | null>();

/** 2030-01-01 08:00:30 in the IANA zone `tz` (null when the browser does not know the zone). */
export function zoneTime(ms: number, tz: string): string | null {
  let f = zoneFormats.get(tz);
  if (f === undefined) {
    try {
      f = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
    } catch {
      f = null;
    }
    zoneFormats.set(tz, f);
  }
  if (!f) return null;
  const parts = f.formatToParts(new Date(ms));
  const g = (t: string): string => parts.find((p) => p.type === t)?.value ?? '';
  return `${g('year')}-${g('month')}-${g('day')} ${g('hour')}:${g('minute')}:${g('second')}`;
}

/** The same instant in the task's zone, when that differs from local time ('' otherwise). */
export function inZone(ms: number, tz: string | undefined): string {
  if (!tz) return '';
  const z = zoneTime(ms, tz);
  if (z === null || z === zoneTime(ms, browserZone())) return '';
  return `${z} ${tz}`;
}

/** "42 %" for a 0..1 rate, "—" for none. */
export const pct = (v: number | null | undefined): string => (v === null || v === undefined ? '—' : `${(v * 100).toFixed(v === 1 || v === 0 ? 0 : 1)} %`);

/** "1m 05s" for an elapsed time. */
export function fmtElapsed(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
}
