/** Waiting on conditions (never on fixed sleeps): poll a check until it holds, or fail with a reason. */

export const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Calls `probe` until `pred` holds for its value and returns that value. Errors thrown by `probe`
 * count as "not yet" (the last one is reported on timeout).
 */
export async function waitUntil<T>(
  probe: () => Promise<T> | T,
  pred: (v: T) => boolean,
  timeoutMs: number,
  what: string,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: { value?: T; error?: unknown } = {};
  for (;;) {
    try {
      const v = await probe();
      last = { value: v };
      if (pred(v)) return v;
    } catch (e) {
      last = { error: e };
    }
    if (Date.now() >= deadline) {
      const seen = 'error' in last ? `last error: ${String(last.error)}` : `last value: ${safeJson(last.value)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${seen}`);
    }
    await delay(intervalMs);
  }
}

function safeJson(v: unknown): string {
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 2000 ? `${s.slice(0, 2000)}…` : s;
  } catch {
    return String(v);
  }
}
