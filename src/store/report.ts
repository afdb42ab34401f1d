/**
 * The daily report's tallies: per UTC day, runs by final status and a histogram of lateness
 * (start - scheduled, SUCCESS and FAIL runs) in fixed buckets. Stores add to them as runs finish
 * (SQLite: the report_days table; Redis: one hash per slot and day, see report-1.lua's callers), so
 * they survive restarts and the pruning of run records. Pure helpers, no I/O.
 */

export const DAY_MS = 86_400_000;

/**
 * Upper edges (ms, exclusive) of the lateness buckets; a lateness at or above the last edge falls
 * in one more bucket. The Lua scripts of the Redis store (`_lib.lua` report_add) hold the same list.
 */
export const LATENESS_EDGES: readonly number[] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000, 300_000];

/** The counted statuses (the tally keys besides the lateness buckets `l<i>`). */
export const REPORT_STATUSES = ['SUCCESS', 'FAIL', 'SKIPPED', 'MISSED'] as const;

export const dayOf = (ms: number): number => Math.floor(ms / DAY_MS);

export function latenessBucket(ms: number): number {
  const v = Math.max(0, ms);
  for (let i = 0; i < LATENESS_EDGES.length; i++) if (v < LATENESS_EDGES[i]!) return i;
  return LATENESS_EDGES.length;
}

/** One day's tallies as stored: `SUCCESS`, `FAIL`, `SKIPPED`, `MISSED`, and `l<bucket>` counts. */
export interface ReportDay {
  /** Days since the epoch (UTC). */
  day: number;
  counts: Record<string, number>;
}

/** Tallies gathered during one write (a batch of run outcomes), added to the store at its end. */
export class ReportTally {
  readonly days = new Map<number, Map<string, number>>();

  private add(day: number, k: string): void {
    let m = this.days.get(day);
    if (!m) this.days.set(day, (m = new Map()));
    m.set(k, (m.get(k) ?? 0) + 1);
  }

  /** A run's final outcome: its status, and its lateness when it started (SUCCESS or FAIL). */
  run(status: string, scheduled: number, start: number | null): void {
    const day = dayOf(scheduled);
    this.add(day, status);
    if (start !== null && (status === 'SUCCESS' || status === 'FAIL')) this.add(day, `l${latenessBucket(start - scheduled)}`);
  }

  *entries(): Generator<[number, string, number]> {
    for (const [day, m] of this.days) for (const [k, n] of m) yield [day, k, n];
  }
}

/**
 * The percentile `p` (0..1) of a day's lateness histogram: the upper edge of the bucket it falls in
 * (the lower edge for the open last bucket). Null without started runs.
 */
export function histPercentile(counts: Record<string, number>, p: number): number | null {
  const n = LATENESS_EDGES.length + 1;
  let total = 0;
  for (let i = 0; i < n; i++) total += counts[`l${i}`] ?? 0;
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(p * total));
  let seen = 0;
  for (let i = 0; i < n; i++) {
    seen += counts[`l${i}`] ?? 0;
    if (seen >= rank) return i < LATENESS_EDGES.length ? LATENESS_EDGES[i]! : LATENESS_EDGES[LATENESS_EDGES.length - 1]!;
  }
  return null;
}
