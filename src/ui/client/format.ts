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
