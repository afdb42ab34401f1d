/**
 * DueGate: deliveries handed over ahead of their due time wait here until it (DeliveryJob.not_before).
 * One timer per distinct due time, however many deliveries wait for it (a burst of 20,000 fires
 * due at one millisecond is one timer). Never early: a timer that fires before the due time by
 * the clock is armed again for the rest. Stopping opens every gate at once.
 */
import type { Clock, TimerHandle } from '../clock/index.js';

interface Wait {
  promise: Promise<void>;
  resolve: () => void;
  timer: TimerHandle | null;
}

export class DueGate {
  private readonly waits = new Map<number, Wait>();
  private opened = false;

  constructor(
    private readonly clock: Clock,
    stop: AbortSignal,
  ) {
    stop.addEventListener('abort', () => this.openAll(), { once: true });
  }

  /** Resolves at `at` (ms epoch, by the clock) or when stopped, whichever comes first. */
  until(at: number): Promise<void> {
    if (this.opened || at <= this.clock.now()) return Promise.resolve();
    let w = this.waits.get(at);
    if (!w) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      w = { promise, resolve, timer: null };
      this.waits.set(at, w);
      this.arm(at, w);
    }
    return w.promise;
  }

  /** Deliveries' due times waited for right now. */
  size(): number {
    return this.waits.size;
  }

  private arm(at: number, w: Wait): void {
    const ms = at - this.clock.now();
    if (ms <= 0) {
      this.waits.delete(at);
      w.timer = null;
      w.resolve();
      return;
    }
    w.timer = this.clock.setTimer(() => this.arm(at, w), ms);
  }

  private openAll(): void {
    this.opened = true;
    for (const w of this.waits.values()) {
      w.timer?.cancel();
      w.resolve();
    }
    this.waits.clear();
  }
}
