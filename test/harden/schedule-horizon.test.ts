/**
 * Issue 23 item 1, the cost half: every cron search is bounded by a 100-year horizon, so a
 * never-matching expression is refused (1005) after scanning at most ~100 years instead of every
 * year up to 9999; and inside the horizon the bounded search gives exactly croner's own answer.
 */
import { Cron } from 'croner';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { XcronError } from '../../src/errors.js';
import { PERIODIC, isQuartz, parseSchedule } from '../../src/task/index.js';
import { SEARCH_HORIZON_YEARS } from '../../src/task/schedule.js';
import { nextFires } from '../../src/ui/preview.js';

const NOW = Date.parse('2026-12-07T10:00:00Z');

describe('search horizon', () => {
  it('the issue`s expression and its relatives are refused as never firing (within the horizon)', () => {
    // The cost of these (100+ ms of CPU each before the bound) is measured on the real server by
    // cpu-cost.test.ts with the server's own CPU counter; here: the answer.
    const exprs = ['0 0 0 31 2,4,6,9,11 ? 2027-9999', '* * * 31 2 ? 2027-9999', '0 0 0 29 2 ? 2101/4', '0 0 0 ? 2 5#5 2101/4', '0 0 0 30 2 ? *', '0 0 0 31W 2 ? *'];
    exprs.forEach((e, i) => {
      // a fresh spelling each time (trailing spaces), so no cache answers
      expect(() => parseSchedule(PERIODIC, `${e}${' '.repeat(i + 1)}`, 'UTC', NOW)).toThrow(expect.objectContaining({ code: 1005, message: expect.stringMatching(/never fires after now \(within 100 years\)/) }));
    });
  });

  it('a fire further than the horizon counts as none; one inside it is found', () => {
    expect(() => parseSchedule(PERIODIC, '0 0 0 1 1 ? 2200', 'UTC', NOW)).toThrow(XcronError);
    expect(parseSchedule(PERIODIC, '0 0 0 1 1 ? 2120', 'UTC', NOW).next(NOW)).toBe(Date.UTC(2120, 0, 1));
    expect(parseSchedule(PERIODIC, '0 0 0 1 1 ? 2100-2300', 'UTC', NOW).next(Date.UTC(2150, 5))).toBe(Date.UTC(2151, 0, 1));
    expect(SEARCH_HORIZON_YEARS).toBe(100);
  });

  it('inside the horizon the bounded search equals croner`s unbounded one (property)', () => {
    const fields = fc.tuple(
      fc.constantFrom('0', '*/15', '5,35', '*'),
      fc.constantFrom('0', '*/7', '59'),
      fc.constantFrom('0', '12', '*/6', '23'),
      fc.constantFrom('*', '1', '15', 'L', '29', '31', '1-7', '?', 'LW', '15W'),
      fc.constantFrom('*', '2', '1,7', '*/3', '12'),
      fc.constantFrom('*', '?', '1-5', '0', '5#5', '6#1', '5L'),
      fc.constantFrom(null, '*', '2026-2040', '2030/4', '2100-2110', '2027,2029,2061', '2024-2025'),
    );
    const tz = fc.constantFrom('UTC', 'Asia/Shanghai', 'America/New_York', 'Australia/Lord_Howe', 'Europe/Berlin');
    const after = fc.integer({ min: Date.UTC(2025, 0, 1), max: Date.UTC(2060, 0, 1) });
    let checked = 0;
    fc.assert(
      fc.property(fields, tz, after, ([s, m, h, dom, mon, dow, year], zone, from) => {
        if (dom === '?' && dow === '?') return;
        const parts = [s, m, h, dom, mon, dow, ...(year !== null ? [year] : [])];
        const expr = parts.join(' ');
        let want: number | null;
        try {
          const c = new Cron(expr, { paused: true, timezone: zone, sloppyRanges: true, alternativeWeekdays: isQuartz(parts), legacyMode: true });
          want = c.nextRun(new Date(from))?.getTime() ?? null;
        } catch {
          return; // an expression croner refuses is not this property's concern
        }
        let got: number | null;
        try {
          got = parseSchedule(PERIODIC, expr, zone, from).next(from);
        } catch (e) {
          // refused as never firing: croner finds nothing either, or only beyond the horizon
          expect(e).toBeInstanceOf(XcronError);
          if (want !== null) expect(new Date(want).getUTCFullYear(), expr).toBeGreaterThan(new Date(from).getUTCFullYear() + SEARCH_HORIZON_YEARS - 1);
          return;
        }
        if (want !== null && new Date(want).getUTCFullYear() > new Date(from).getUTCFullYear() + SEARCH_HORIZON_YEARS - 1) return;
        expect(got, `${expr} ${zone} after ${new Date(from).toISOString()}`).toBe(want);
        checked++;
      }),
      { numRuns: 400 },
    );
    expect(checked).toBeGreaterThan(100);
  });
});

describe('preview budget', () => {
  it('a long list of rare fires is cut by the CPU budget and says so', () => {
    const q = { type: PERIODIC, format: '0 0 0 1 1 ? 2030/90', timezone: 'UTC', from: null, start: null, end: null, count: 20 } as const;
    const full = nextFires(q, NOW, 1_000);
    expect(full.truncated).toBe(false);
    expect(full.times[0]).toBe(Date.UTC(2030, 0, 1));
    const cut = nextFires(q, NOW, -1); // a spent budget: only the first time
    expect(cut).toEqual({ times: [Date.UTC(2030, 0, 1)], truncated: true });
  });
});
