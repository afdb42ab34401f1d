/**
 * Time is injectable. Production code takes a Clock; tests use ManualClock and advance it.
 * All times are ms epoch numbers.
 */

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  now(): number;
  /** Runs fn after `ms` (clamped to >= 0). The handle cancels it. */
  setTimer(fn: () => void, ms: number): TimerHandle;
}

export class SystemClock implements Clock {
  now(): number {
    return Date.now();
  }
  setTimer(fn: () => void, ms: number): TimerHandle {
    const t = setTimeout(fn, Math.max(0, ms));
    return { cancel: () => clearTimeout(t) };
  }
}

interface ManualTimer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** A clock that moves only when told to. Timers due at or before the new time run in order. */
export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private timers: ManualTimer[] = [];

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  setTimer(fn: () => void, ms: number): TimerHandle {
    const timer: ManualTimer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.timers.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }
  /** Number of timers still waiting. */
  pending(): number {
    return this.timers.filter((x) => !x.cancelled).length;
  }
  /** Moves time to `to`, firing every due timer (including ones scheduled by fired timers). */
  advanceTo(to: number): void {
    for (;;) {
      const live = this.timers.filter((x) => !x.cancelled && x.at <= to);
      if (live.length === 0) break;
      live.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = live[0]!;
      next.cancelled = true;
      this.timers = this.timers.filter((x) => !x.cancelled);
      if (next.at > this.t) this.t = next.at;
      next.fn();
    }
    if (to > this.t) this.t = to;
  }
  advance(ms: number): void {
    this.advanceTo(this.t + ms);
  }
  /** Sets the time without running timers (a clock jump). */
  jumpTo(to: number): void {
    this.t = to;
  }
}

/** Sleeps on a clock; resolves early if the signal aborts. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const h = clock.setTimer(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      h.cancel();
      resolve();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
