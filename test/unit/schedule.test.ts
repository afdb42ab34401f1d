/**
 * Schedule parsing and next-fire calculation (src/task/schedule.ts, src/task/index.ts).
 * Every expectation uses fixed ISO instants; the calendars were checked by hand
 * (2026-01-01 is a Thursday; US DST 2026: Mar 8 / Nov 1; EU DST 2026: Mar 29 / Oct 25;
 * Lord Howe (30-minute DST) 2026: ends Apr 5, starts Oct 4).
 */
import { describe, expect, it } from 'vitest';
import { Codes, XcronError } from '../../src/errors.js';
import {
  checkTimezone,
  firstFire,
  isQuartz,
  nextFire,
  parseEvery,
  parseOneShot,
  parseSchedule,
  validateCreate,
  type ValidationLimits,
} from '../../src/task/index.js';

const ms = (iso: string): number => Date.parse(iso);
const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());

/** Runs fn and returns the XcronError it throws (fails the test otherwise). */
function xerr(fn: () => unknown): XcronError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(XcronError);
    return e as XcronError;
  }
  throw new Error('expected an XcronError, nothing was thrown');
}

interface Case {
  format: string;
  tz: string;
  from: string;
  next: string;
  /** Optional second fire (next after `next`). */
  then?: string;
}

const CASES: [string, Case][] = [
  // ---- 5 fields: basics, steps, ranges, lists, names ----
  ['every minute', { format: '* * * * *', tz: 'UTC', from: '2026-01-01T00:00:30Z', next: '2026-01-01T00:01:00.000Z' }],
  ['strictly after an exact match', { format: '0 0 * * *', tz: 'UTC', from: '2026-01-02T00:00:00Z', next: '2026-01-03T00:00:00.000Z' }],
  ['*/15 step', { format: '*/15 * * * *', tz: 'UTC', from: '2026-01-01T00:07:00Z', next: '2026-01-01T00:15:00.000Z', then: '2026-01-01T00:30:00.000Z' }],
  ['0/15 sloppy range', { format: '0/15 * * * *', tz: 'UTC', from: '2026-01-01T00:07:00Z', next: '2026-01-01T00:15:00.000Z', then: '2026-01-01T00:30:00.000Z' }],
  ['5/5 sloppy range', { format: '5/5 * * * *', tz: 'UTC', from: '2026-01-01T00:00:00Z', next: '2026-01-01T00:05:00.000Z', then: '2026-01-01T00:10:00.000Z' }],
  ['hour range, weekday range (Fri evening -> Mon)', { format: '0 9-17 * * 1-5', tz: 'UTC', from: '2026-01-02T18:00:00Z', next: '2026-01-05T09:00:00.000Z' }],
  ['stepped range', { format: '0 8-18/4 * * *', tz: 'UTC', from: '2026-01-01T08:01:00Z', next: '2026-01-01T12:00:00.000Z', then: '2026-01-01T16:00:00.000Z' }],
  ['day-of-month list', { format: '0 0 1,15 * *', tz: 'UTC', from: '2026-01-02T00:00:00Z', next: '2026-01-15T00:00:00.000Z', then: '2026-02-01T00:00:00.000Z' }],
  ['month step', { format: '0 0 1 */3 *', tz: 'UTC', from: '2026-02-01T00:00:01Z', next: '2026-04-01T00:00:00.000Z', then: '2026-07-01T00:00:00.000Z' }],
  ['month and weekday names', { format: '0 12 * JAN-MAR MON-FRI', tz: 'UTC', from: '2026-03-31T12:00:00Z', next: '2027-01-01T12:00:00.000Z', then: '2027-01-04T12:00:00.000Z' }],
  ['weekday 0 is Sunday', { format: '0 0 * * 0', tz: 'UTC', from: '2026-01-01T00:00:00Z', next: '2026-01-04T00:00:00.000Z' }],
  ['weekday 7 is Sunday too', { format: '0 0 * * 7', tz: 'UTC', from: '2026-01-01T00:00:00Z', next: '2026-01-04T00:00:00.000Z' }],
  ['Vixie OR: 13th or Friday (Friday first)', { format: '0 0 13 * 5', tz: 'UTC', from: '2026-01-01T00:00:00Z', next: '2026-01-02T00:00:00.000Z', then: '2026-01-09T00:00:00.000Z' }],
  ['Vixie OR: 13th or Friday (13th, a Tuesday)', { format: '0 0 13 * 5', tz: 'UTC', from: '2026-01-09T00:00:00Z', next: '2026-01-13T00:00:00.000Z', then: '2026-01-16T00:00:00.000Z' }],
  ['Feb 29 waits for a leap year', { format: '0 0 29 2 *', tz: 'UTC', from: '2026-01-01T00:00:00Z', next: '2028-02-29T00:00:00.000Z' }],
  ['L (last day of month) in 5 fields', { format: '0 0 L * *', tz: 'UTC', from: '2026-01-01T00:00:00Z', next: '2026-01-31T00:00:00.000Z', then: '2026-02-28T00:00:00.000Z' }],
  ['5#2 second Friday (standard numbering)', { format: '0 0 * * 5#2', tz: 'UTC', from: '2026-01-01T00:00:00Z', next: '2026-01-09T00:00:00.000Z', then: '2026-02-13T00:00:00.000Z' }],
  ['surrounding whitespace is ignored', { format: '  0 0 * * *  ', tz: 'UTC', from: '2026-01-01T00:00:00Z', next: '2026-01-02T00:00:00.000Z' }],
  // ---- 6 fields (leading seconds) ----
  ['6 fields: second 30', { format: '30 * * * * *', tz: 'UTC', from: '2026-01-01T00:00:30Z', next: '2026-01-01T00:01:30.000Z' }],
  ['6 fields: */10 seconds', { format: '*/10 * * * * *', tz: 'UTC', from: '2026-01-01T00:00:05Z', next: '2026-01-01T00:00:10.000Z', then: '2026-01-01T00:00:20.000Z' }],
  ['6 fields without ?: weekday 2 is Tuesday', { format: '0 0 12 * * 2', tz: 'UTC', from: '2026-01-01T00:00:00Z', next: '2026-01-06T12:00:00.000Z' }],
  // ---- 7 fields (trailing year) = Quartz dialect ----
  ['7 fields: weekday 2 is Monday (Quartz)', { format: '0 0 12 * * 2 2026', tz: 'UTC', from: '2026-01-01T00:00:00Z', next: '2026-01-05T12:00:00.000Z' }],
  ['7 fields: a future year', { format: '0 0 0 1 1 * 2030', tz: 'UTC', from: '2026-01-01T00:00:00Z', next: '2030-01-01T00:00:00.000Z' }],
  // ---- Quartz markers ----
  ['Quartz ? with weekday 2 = Monday', { format: '0 0 12 ? * 2', tz: 'UTC', from: '2026-01-01T00:00:00Z', next: '2026-01-05T12:00:00.000Z', then: '2026-01-12T12:00:00.000Z' }],
  ['Quartz ? with weekday 1 = Sunday', { format: '0 0 12 ? * 1', tz: 'UTC', from: '2026-01-01T00:00:00Z', next: '2026-01-04T12:00:00.000Z' }],
  ['Quartz ? with MON', { format: '0 0 12 ? * MON', tz: 'UTC', from: '2026-01-01T00:00:00Z', next: '2026-01-05T12:00:00.000Z' }],
  ['Quartz L: last day of month', { format: '0 0 12 L * ?', tz: 'UTC', from: '2026-02-01T00:00:00Z', next: '2026-02-28T12:00:00.000Z', then: '2026-03-31T12:00:00.000Z' }],
  ['Quartz LW: last weekday (Jan 31 is a Saturday)', { format: '0 0 12 LW * ?', tz: 'UTC', from: '2026-01-01T00:00:00Z', next: '2026-01-30T12:00:00.000Z', then: '2026-02-27T12:00:00.000Z' }],
  ['Quartz 15W: Sunday the 15th -> Monday the 16th', { format: '0 0 12 15W * ?', tz: 'UTC', from: '2026-02-01T00:00:00Z', next: '2026-02-16T12:00:00.000Z', then: '2026-03-16T12:00:00.000Z' }],
  ['Quartz 6#3: third Friday', { format: '0 0 12 ? * 6#3', tz: 'UTC', from: '2026-01-01T00:00:00Z', next: '2026-01-16T12:00:00.000Z', then: '2026-02-20T12:00:00.000Z' }],
  ['Quartz 6L: last Friday', { format: '0 0 12 ? * 6L', tz: 'UTC', from: '2026-01-01T00:00:00Z', next: '2026-01-30T12:00:00.000Z', then: '2026-02-27T12:00:00.000Z' }],
  // ---- nicknames ----
  ['@yearly', { format: '@yearly', tz: 'UTC', from: '2026-01-01T00:00:00Z', next: '2027-01-01T00:00:00.000Z' }],
  ['@annually', { format: '@annually', tz: 'UTC', from: '2026-01-01T00:00:00Z', next: '2027-01-01T00:00:00.000Z' }],
  ['@YEARLY (case-insensitive)', { format: '@YEARLY', tz: 'UTC', from: '2026-06-01T00:00:00Z', next: '2027-01-01T00:00:00.000Z' }],
  ['@monthly', { format: '@monthly', tz: 'UTC', from: '2026-01-01T00:00:00Z', next: '2026-02-01T00:00:00.000Z', then: '2026-03-01T00:00:00.000Z' }],
  ['@weekly (Sunday midnight)', { format: '@weekly', tz: 'UTC', from: '2026-01-01T00:00:00Z', next: '2026-01-04T00:00:00.000Z', then: '2026-01-11T00:00:00.000Z' }],
  ['@daily', { format: '@daily', tz: 'UTC', from: '2026-01-01T00:00:00Z', next: '2026-01-02T00:00:00.000Z' }],
  ['@midnight', { format: '@midnight', tz: 'UTC', from: '2026-01-01T10:00:00Z', next: '2026-01-02T00:00:00.000Z' }],
  ['@hourly', { format: '@hourly', tz: 'UTC', from: '2026-01-01T00:07:00Z', next: '2026-01-01T01:00:00.000Z' }],
  ['@daily in Asia/Shanghai', { format: '@daily', tz: 'Asia/Shanghai', from: '2026-01-01T00:00:00Z', next: '2026-01-01T16:00:00.000Z' }],
  // ---- timezones ----
  ['Asia/Shanghai midnight = 16:00Z', { format: '0 0 * * *', tz: 'Asia/Shanghai', from: '2026-01-01T00:00:00Z', next: '2026-01-01T16:00:00.000Z', then: '2026-01-02T16:00:00.000Z' }],
  ['Asia/Shanghai weekdays 09:00 (Fri 10:00 -> Mon)', { format: '0 9 * * 1-5', tz: 'Asia/Shanghai', from: '2026-01-02T02:00:00Z', next: '2026-01-05T01:00:00.000Z' }],
  ['Europe/Berlin 08:00 in winter (CET)', { format: '0 8 * * *', tz: 'Europe/Berlin', from: '2026-01-01T00:00:00Z', next: '2026-01-01T07:00:00.000Z' }],
  ['Europe/Berlin 08:00 in summer (CEST)', { format: '0 8 * * *', tz: 'Europe/Berlin', from: '2026-07-01T00:00:00Z', next: '2026-07-01T06:00:00.000Z' }],
  // ---- DST: New York ----
  ['NY gap: 02:30 does not exist -> 03:00 EDT, then 02:30 EDT next day', { format: '30 2 * * *', tz: 'America/New_York', from: '2026-03-08T05:00:00Z', next: '2026-03-08T07:00:00.000Z', then: '2026-03-09T06:30:00.000Z' }],
  ['NY repeated hour: 01:30 fires on the first pass only', { format: '30 1 * * *', tz: 'America/New_York', from: '2026-11-01T04:00:00Z', next: '2026-11-01T05:30:00.000Z', then: '2026-11-02T06:30:00.000Z' }],
  ['NY repeated hour: after the first pass, next is the next day', { format: '30 1 * * *', tz: 'America/New_York', from: '2026-11-01T05:31:00Z', next: '2026-11-02T06:30:00.000Z' }],
  ['NY hourly fires on both passes of 01:00', { format: '0 * * * *', tz: 'America/New_York', from: '2026-11-01T05:00:00Z', next: '2026-11-01T06:00:00.000Z', then: '2026-11-01T07:00:00.000Z' }],
  // ---- DST: Berlin ----
  ['Berlin gap: 02:30 does not exist -> 03:00 CEST', { format: '30 2 * * *', tz: 'Europe/Berlin', from: '2026-03-29T00:00:00Z', next: '2026-03-29T01:00:00.000Z', then: '2026-03-30T00:30:00.000Z' }],
  ['Berlin gap: an interval job skips the missing hour', { format: '*/30 2 * * *', tz: 'Europe/Berlin', from: '2026-03-29T00:00:00Z', next: '2026-03-30T00:00:00.000Z', then: '2026-03-30T00:30:00.000Z' }],
  ['Berlin repeated hour: 02:30 on the first pass (CEST) only', { format: '30 2 * * *', tz: 'Europe/Berlin', from: '2026-10-25T00:00:00Z', next: '2026-10-25T00:30:00.000Z', then: '2026-10-26T01:30:00.000Z' }],
  ['Berlin hourly fires on both passes of 02:00', { format: '0 * * * *', tz: 'Europe/Berlin', from: '2026-10-24T23:30:00Z', next: '2026-10-25T00:00:00.000Z', then: '2026-10-25T01:00:00.000Z' }],
  // ---- DST: Lord Howe (30-minute shift) ----
  ['Lord Howe repeated half hour: 01:30 first pass (+11)', { format: '0 30 1 * * *', tz: 'Australia/Lord_Howe', from: '2026-04-04T14:00:00Z', next: '2026-04-04T14:30:00.000Z', then: '2026-04-05T15:00:00.000Z' }],
  ['Lord Howe gap: 02:15 does not exist -> 02:30 (+11)', { format: '0 15 2 * * *', tz: 'Australia/Lord_Howe', from: '2026-10-03T12:00:00Z', next: '2026-10-03T15:30:00.000Z', then: '2026-10-04T15:15:00.000Z' }],
];

describe('parseSchedule: cron next fire times', () => {
  it('has a table of at least 30 expressions', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(30);
  });

  it.each(CASES)('%s', (_name, c) => {
    const from = ms(c.from);
    const s = parseSchedule(1, c.format, c.tz, from);
    const n = s.next(from);
    expect(iso(n)).toBe(c.next);
    if (c.then !== undefined) expect(iso(s.next(n!))).toBe(c.then);
  });

  it('nextFire(task, after) agrees with parseSchedule', () => {
    const task = { type: 1 as const, format: '30 2 * * *', timezone: 'America/New_York', create_time: ms('2026-01-01T00:00:00Z') };
    expect(iso(nextFire(task, ms('2026-03-08T05:00:00Z')))).toBe('2026-03-08T07:00:00.000Z');
  });

  it('a 7-field expression whose last year has passed returns null after its last fire', () => {
    const s = parseSchedule(1, '0 0 0 1 1 * 2027', 'UTC', ms('2026-01-01T00:00:00Z'));
    const n = s.next(ms('2026-06-01T00:00:00Z'));
    expect(iso(n)).toBe('2027-01-01T00:00:00.000Z');
    expect(s.next(n!)).toBeNull();
  });
});

describe('isQuartz', () => {
  it.each([
    [['0', '0', '12', '?', '*', '2'], true],
    [['0', '0', '12', '*', '*', '2', '2026'], true],
    [['0', '12', '*', '*', '2'], false],
    [['0', '0', '12', '*', '*', '2'], false],
  ])('%j -> %s', (fields, want) => {
    expect(isQuartz(fields)).toBe(want);
  });
});

describe('parseSchedule: invalid expressions -> 1005 with the reason', () => {
  const bad: [string, RegExp][] = [
    ['61 * * * *', /minute/i],
    ['0 0 * 13 *', /month/i],
    ['0 0 * * 8', /dayOfWeek/i],
    ['0 0 12 ? * 0', /dayOfWeek/i], // Quartz weekdays are 1..7
    ['0 */0 * * *', /step/i],
    ['a b c d e', /illegal characters/i],
    ['* * *', /expected 5, 6 or 7 space-separated fields, got 3/],
    ['* * * * * * * *', /expected 5, 6 or 7 space-separated fields, got 8/],
    ['', /fields/],
    ['@reboot', /unknown nickname "@reboot"/],
    ['@every10s', /unknown nickname/],
    ['0 0 30 2 *', /never fires/],
    ['0 0 0 1 1 * 2020', /never fires/],
  ];
  it.each(bad)('%j', (format, reason) => {
    const e = xerr(() => parseSchedule(1, format, 'UTC', ms('2026-01-01T00:00:00Z')));
    expect(e.code).toBe(Codes.CRON_INVALID);
    expect(e.code).toBe(1005);
    expect(e.status).toBe(400);
    expect(e.message).toContain(JSON.stringify(format));
    expect(e.message).toMatch(reason);
  });
});

describe('timezones', () => {
  it('unknown timezone -> 1006', () => {
    const e = xerr(() => parseSchedule(1, '0 0 * * *', 'Mars/Olympus', ms('2026-01-01T00:00:00Z')));
    expect(e.code).toBe(Codes.TIMEZONE);
    expect(e.code).toBe(1006);
    expect(e.message).toContain('Mars/Olympus');
  });
  it('unknown timezone is checked for @every too', () => {
    expect(xerr(() => parseSchedule(1, '@every 10s', 'Not/AZone', 0)).code).toBe(1006);
  });
  it('checkTimezone returns the canonical IANA name', () => {
    expect(checkTimezone('Asia/Shanghai')).toBe('Asia/Shanghai');
    expect(checkTimezone('asia/shanghai')).toBe('Asia/Shanghai');
    expect(checkTimezone('UTC')).toBe('UTC');
    expect(xerr(() => checkTimezone('Europe/Nowhere')).code).toBe(1006);
  });
});

describe('@every', () => {
  it.each([
    ['@every 30s', 30_000],
    ['@every 1s', 1000],
    ['@every 1h30m', 5_400_000],
    ['@every 2d', 172_800_000],
    ['@every 1m30s', 90_000],
    ['@every 1s500ms', 1500],
    ['@every 366d', 366 * 86_400_000],
  ])('parses %j as %i ms', (format, want) => {
    expect(parseEvery(format)).toBe(want);
  });

  it.each([
    ['@every 500ms', /at least 1s/],
    ['@every 0s', /at least 1s/],
    ['@every 367d', /at most 366d/],
    ['@every', /needs a duration/],
    ['@every 1x', /cannot read duration/],
    ['@every ten seconds', /cannot read duration/],
    ['@every 1h 30m', /cannot read duration/],
    ['@every 30', /cannot read duration/],
  ])('rejects %j with 1005', (format, reason) => {
    const e = xerr(() => parseEvery(format));
    expect(e.code).toBe(1005);
    expect(e.message).toMatch(reason);
    // and through parseSchedule as well
    expect(xerr(() => parseSchedule(1, format, 'UTC', 0)).code).toBe(1005);
  });

  it('ticks are anchored on the creation time, never on "now"', () => {
    const created = ms('2026-01-01T00:00:07.250Z');
    const s = parseSchedule(1, '@every 30s', 'UTC', created);
    expect(iso(s.next(created))).toBe('2026-01-01T00:00:37.250Z');
    // asked much later, at an arbitrary instant: still on the creation grid
    expect(iso(s.next(ms('2026-01-01T01:00:00Z')))).toBe('2026-01-01T01:00:07.250Z');
    expect(iso(s.next(ms('2026-01-01T01:00:07.250Z')))).toBe('2026-01-01T01:00:37.250Z');
    expect(iso(s.next(ms('2026-01-01T01:00:07.249Z')))).toBe('2026-01-01T01:00:07.250Z');
    // before the anchor: the first tick after creation
    expect(iso(s.next(created - 86_400_000))).toBe('2026-01-01T00:00:37.250Z');
  });

  it('nextFire uses the task create_time as the anchor', () => {
    const task = { type: 1 as const, format: '@every 1h30m', timezone: 'UTC', create_time: ms('2026-01-01T00:10:00Z') };
    expect(iso(nextFire(task, ms('2026-01-01T05:00:00Z')))).toBe('2026-01-01T06:10:00.000Z');
  });

  it('@every ignores DST (fixed elapsed intervals across the NY gap)', () => {
    const created = ms('2026-03-08T06:00:00Z'); // 01:00 EST
    const s = parseSchedule(1, '@every 1h', 'America/New_York', created);
    expect(iso(s.next(created))).toBe('2026-03-08T07:00:00.000Z');
    expect(iso(s.next(ms('2026-03-08T07:00:00Z')))).toBe('2026-03-08T08:00:00.000Z');
  });
});

describe('one-shot timestamps', () => {
  it('accepts 10-digit unix seconds', () => {
    expect(parseOneShot('1767225600')).toBe(ms('2026-01-01T00:00:00Z'));
  });
  it('accepts 13-digit unix milliseconds', () => {
    expect(parseOneShot('1767225600123')).toBe(ms('2026-01-01T00:00:00.123Z'));
  });
  it.each(['176722560', '17672256001', '176722560012', '17672256001234', '', 'abc', '17672256OO', '-1767225600', '1767225600.5', '1.7e9', '0x6955B900'])(
    'rejects %j with 1001',
    (format) => {
      const e = xerr(() => parseOneShot(format));
      expect(e.code).toBe(Codes.ONESHOT_FORMAT);
      expect(e.code).toBe(1001);
      expect(e.message).toMatch(/unix timestamp in seconds/);
    },
  );
  it('the one-shot schedule fires once: at its time, then never', () => {
    const at = ms('2026-01-01T00:00:00Z');
    const s = parseSchedule(2, '1767225600', 'UTC', at - 10_000);
    expect(s.next(at - 1)).toBe(at);
    expect(s.next(at)).toBeNull();
    expect(s.next(at + 1)).toBeNull();
  });

  describe('past timestamps (firstFire / validateCreate) and the 1 s grace', () => {
    const at = ms('2026-01-01T00:00:00Z');
    const limits: ValidationLimits = { defaultTimezone: 'UTC', callbackBodyLimit: 65_536, pastGraceMs: 1000 };
    const body = (format: string) => ({ type: 2, format, callback: { url: 'http://example.com/cb' } });

    it('a future time is its own first fire', () => {
      expect(firstFire({ type: 2, format: '1767225600', timezone: 'UTC' }, at - 5000, 1000)).toBe(at);
      expect(validateCreate(body('1767225600'), at - 5000, limits).next_fire_time).toBe(at);
    });
    it('exactly now is accepted', () => {
      expect(validateCreate(body('1767225600'), at, limits).next_fire_time).toBe(at);
    });
    it('up to 1 s in the past is accepted (fires at once)', () => {
      expect(validateCreate(body('1767225600000'), at + 1000, limits).next_fire_time).toBe(at);
    });
    it('more than 1 s in the past -> 1002', () => {
      const e = xerr(() => validateCreate(body('1767225600000'), at + 1001, limits));
      expect(e.code).toBe(Codes.ONESHOT_TIME);
      expect(e.code).toBe(1002);
      expect(e.message).toMatch(/in the past/);
      expect(xerr(() => firstFire({ type: 2, format: '1767225600', timezone: 'UTC' }, at + 60_000, 1000)).code).toBe(1002);
    });
    it('a 10-digit timestamp one second old with the grace is accepted; two seconds old is not', () => {
      expect(validateCreate(body('1767225600'), at + 1000, limits).next_fire_time).toBe(at);
      expect(xerr(() => validateCreate(body('1767225600'), at + 2000, limits)).code).toBe(1002);
    });
    it('a bad one-shot format through validateCreate -> 1001', () => {
      expect(xerr(() => validateCreate(body('12345'), at, limits)).code).toBe(1001);
    });
  });
});

describe('firstFire for periodic tasks', () => {
  it('is the first tick strictly after now', () => {
    const now = ms('2026-01-01T00:00:00Z');
    expect(iso(firstFire({ type: 1, format: '0 0 * * *', timezone: 'UTC' }, now, 1000))).toBe('2026-01-02T00:00:00.000Z');
    expect(iso(firstFire({ type: 1, format: '@every 10s', timezone: 'UTC' }, now, 1000))).toBe('2026-01-01T00:00:10.000Z');
  });
  it('an expression that never fires again -> 1005', () => {
    const e = xerr(() => firstFire({ type: 1, format: '0 0 0 1 1 * 2025', timezone: 'UTC' }, ms('2026-01-01T00:00:00Z'), 1000));
    expect(e.code).toBe(1005);
    expect(e.message).toMatch(/never fires/);
  });
});
