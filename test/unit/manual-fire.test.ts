import { describe, expect, it } from 'vitest';
import { manualFireTime, nextFire } from '../../src/task/index.js';

const T0 = Date.UTC(2026, 0, 1, 0, 0, 0);

describe('manualFireTime (fire ids of triggers never take a scheduled tick)', () => {
  const cron = { type: 1 as const, format: '*/1 * * * * *', timezone: 'UTC', create_time: T0 - 5000 };

  it('keeps a time that is not a tick', () => {
    expect(manualFireTime(cron, T0 + 123)).toBe(T0 + 123);
  });

  it('moves off a tick of a periodic task', () => {
    expect(nextFire(cron, T0 + 999)).toBe(T0 + 1000);
    expect(manualFireTime(cron, T0 + 1000)).toBe(T0 + 1001);
  });

  it('moves off the time of a one-shot task', () => {
    const oneShot = { type: 2 as const, format: String(T0 + 5000), timezone: 'UTC', create_time: T0 };
    expect(manualFireTime(oneShot, T0 + 5000)).toBe(T0 + 5001);
    expect(manualFireTime(oneShot, T0 + 4000)).toBe(T0 + 4000);
  });
});
