/**
 * A monotonic millisecond clock that every thread of the process reads alike: `process.hrtime`
 * (CLOCK_MONOTONIC) is process-wide, while `performance.now()` counts from each thread's own
 * start. Lease deadlines set on the main thread are compared with it in the delivery thread.
 */
export function monoMs(): number {
  const [s, ns] = process.hrtime();
  return s * 1000 + ns / 1e6;
}
