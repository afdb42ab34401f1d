/** Plain-language schedules (src/task/describe.ts): the expression read as xcron's parser reads it. */
import { describe, expect, it } from 'vitest';
import { describeSchedule } from '../../src/task/index.js';

describe('describeSchedule', () => {
  it.each([
    ['0 9 * * 1-5', 'Europe/Berlin', 'At 09:00, Monday through Friday (Europe/Berlin)'],
    ['*/5 * * * * *', 'UTC', 'Every 5 seconds (UTC)'],
    ['0 0 * * 0', 'UTC', 'At 00:00, only on Sunday (UTC)'],
    ['0 0 * * 7', 'UTC', 'At 00:00, only on Sunday (UTC)'],
    // Quartz: weekday 1 is Sunday, 6 is Friday; 7 fields carry a year.
    ['0 0 12 ? * 1', 'UTC', 'At 12:00, only on Sunday (UTC)'],
    ['0 15 10 ? * 6L', 'Asia/Shanghai', 'At 10:15, on the last Friday of the month (Asia/Shanghai)'],
    ['0 0 12 ? * MON-FRI 2027', 'UTC', 'At 12:00, Monday through Friday, only in 2027 (UTC)'],
    ['@daily', 'UTC', 'At 00:00 (UTC)'],
    ['@WEEKLY', 'UTC', 'At 00:00, only on Sunday (UTC)'],
  ])('%s in %s', (format, tz, text) => {
    expect(describeSchedule(1, format, tz)).toBe(text);
  });

  it('describes @every and one-shots, and answers null for what it cannot read', () => {
    expect(describeSchedule(1, '@every 1h30m', 'UTC')).toBe("Every 1h30m (from the task's creation)");
    expect(describeSchedule(2, '1767225600', 'UTC')).toBe('Once at 2026-01-01T00:00:00.000Z');
    expect(describeSchedule(2, '1767225600123', 'UTC')).toBe('Once at 2026-01-01T00:00:00.123Z');
    expect(describeSchedule(1, 'not a cron', 'UTC')).toBeNull();
  });
});
