/** Rolling in-memory figures for /xcron/stats: fire lateness and callback latency percentiles. */
import type { Scheduler } from './index.js';

class Ring {
  private readonly buf: Float64Array;
  private n = 0;
  private i = 0;
  constructor(size: number) {
    this.buf = new Float64Array(size);
  }
  add(v: number): void {
    this.buf[this.i] = v;
    this.i = (this.i + 1) % this.buf.length;
    if (this.n < this.buf.length) this.n++;
  }
  summary(): Summary {
    if (this.n === 0) return { count: 0, p50: null, p90: null, p99: null, max: null };
    const a = Array.from(this.buf.subarray(0, this.n)).sort((x, y) => x - y);
    const q = (p: number): number => a[Math.min(a.length - 1, Math.floor(p * a.length))]!;
    return { count: this.n, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: a[a.length - 1]! };
  }
}

interface Summary {
  count: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
}

/** A node's live figures (/xcron/stats `live`). */
export interface LiveStats {
  since: number;
  fired: number;
  skipped: number;
  missed: number;
  succeeded: number;
  failed: number;
  success_rate: number | null;
  failure_rate: number | null;
  lateness_ms: Summary;
  callback_latency_ms: Summary;
}

export class SchedulerStats {
  readonly since = Date.now();
  fired = 0;
  skipped = 0;
  missed = 0;
  succeeded = 0;
  failed = 0;
  private readonly lateness = new Ring(10_000);
  private readonly latency = new Ring(10_000);

  constructor(scheduler: Scheduler) {
    scheduler.on('fired', (e) => {
      if (e.status === 'PENDING') this.fired++;
      else if (e.status === 'SKIPPED') this.skipped++;
      else this.missed++;
    });
    scheduler.on('released', (e) => this.lateness.add(Math.max(0, e.released_at - e.scheduled_time)));
    scheduler.on('finished', (e) => {
      if (e.result.ok) this.succeeded++;
      else this.failed++;
      this.latency.add(e.result.duration_ms);
    });
  }

  snapshot(): LiveStats {
    const done = this.succeeded + this.failed;
    return {
      since: this.since,
      fired: this.fired,
      skipped: this.skipped,
      missed: this.missed,
      succeeded: this.succeeded,
      failed: this.failed,
      success_rate: done === 0 ? null : this.succeeded / done,
      failure_rate: done === 0 ? null : this.failed / done,
      lateness_ms: this.lateness.summary(),
      callback_latency_ms: this.latency.summary(),
    };
  }
}
