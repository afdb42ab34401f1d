/**
 * Counting arrivals in time windows (flow-control tests): checks of a rate on the receiver's own
 * timestamps, never on elapsed time.
 */

/** The most arrivals inside any window [t, t + width) that starts at an arrival. */
export function maxInWindow(times: readonly number[], width: number): number {
  const s = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < s.length; i++) {
    while (j < s.length && s[j]! < s[i]! + width) j++;
    best = Math.max(best, j - i);
  }
  return best;
}
