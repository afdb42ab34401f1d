/**
 * What the overview reads from the server's history, so it is not empty on load: the recent
 * failures (GET /xcron/runs?status=FAIL), activity per minute from the newest runs (GET /xcron/runs),
 * and the daily report (GET /xcron/report).
 */
import { api, qs } from './api.js';
import type { Point } from './charts.js';
import type { ReportDay, RunPage, RunView } from './types.js';

export const HISTORY_MINUTES = 30;

/** Per-minute series from runs: fired, succeeded, failed, skipped+missed, and lateness p50/p99. */
export interface Activity {
  fired: Point[];
  ok: Point[];
  fail: Point[];
  miss: Point[];
  p50: Point[];
  p99: Point[];
  /** How many runs it was computed from. */
  runs: number;
  /** Where the window starts (ms). */
  from: number;
}

const q = (sorted: number[], p: number): number | null => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : null);

/** Buckets runs (any order) into minutes from `from` to `to`. */
export function activityOf(runs: readonly RunView[], from: number, to: number): Activity {
  const start = Math.floor(from / 60_000) * 60_000;
  const n = Math.max(1, Math.ceil((to - start) / 60_000));
  const b = Array.from({ length: n }, () => ({ fired: 0, ok: 0, fail: 0, miss: 0, late: [] as number[] }));
  for (const r of runs) {
    const i = Math.floor((r.scheduled_time - start) / 60_000);
    const c = b[i];
    if (!c) continue;
    if (r.status === 'SKIPPED' || r.status === 'MISSED') c.miss++;
    else c.fired++;
    if (r.status === 'SUCCESS') c.ok++;
    if (r.status === 'FAIL') c.fail++;
    if (r.start_time !== null && r.status !== 'SKIPPED' && r.status !== 'MISSED') c.late.push(Math.max(0, r.start_time - r.scheduled_time));
  }
  const t = (i: number): number => Math.min(to, start + i * 60_000 + 30_000);
  const pts = (f: (c: (typeof b)[number]) => number | null): Point[] => b.map((c, i) => [t(i), f(c)]);
  return {
    fired: pts((c) => c.fired),
    ok: pts((c) => c.ok),
    fail: pts((c) => c.fail),
    miss: pts((c) => c.miss),
    p50: pts((c) => q(c.late.sort((x, y) => x - y), 0.5)),
    p99: pts((c) => q(c.late, 0.99)),
    runs: runs.length,
    from: start,
  };
}

/** The last HISTORY_MINUTES of runs (at most 1000, the newest) as per-minute activity. */
export async function fetchActivity(): Promise<Activity> {
  const to = Date.now();
  const from = to - HISTORY_MINUTES * 60_000;
  const d = await api<RunPage>('GET', `/xcron/runs${qs({ from, to, limit: 1000 })}`);
  const runs = d.runs ?? [];
  const oldest = runs.length && d.next_cursor ? runs[runs.length - 1]!.scheduled_time : from;
  return activityOf(runs, Math.max(from, oldest), to);
}

export async function fetchFailures(limit: number): Promise<RunView[]> {
  const d = await api<RunPage>('GET', `/xcron/runs${qs({ status: 'FAIL', limit })}`);
  return d.runs ?? [];
}

export async function fetchReport(days: number): Promise<ReportDay[]> {
  const d = await api<{ days?: ReportDay[] }>('GET', `/xcron/report${qs({ days })}`);
  return (d.days ?? []).slice().sort((a, b) => a.date.localeCompare(b.date));
}
