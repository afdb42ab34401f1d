/**
 * CPU and memory of groups of processes, from /proc: CPU seconds summed over a group between two
 * marks, and the peak of the group's summed RSS, sampled every `everyMs` (a process that exits keeps
 * the CPU it had used at its last reading).
 */
import { cpuSecondsOf, memOf, round1, round2 } from './common.js';

export type PidSource = () => readonly number[];

export class GroupMeter {
  private readonly lastCpu = new Map<number, number>();
  private cpu0 = 0;
  private peakRss = 0;
  private timer: NodeJS.Timeout | null = null;
  private samples = 0;

  constructor(
    readonly name: string,
    private readonly pids: PidSource,
    private readonly everyMs = 200,
  ) {}

  /** Sum of CPU seconds used so far by the group's processes (dead ones: their last reading). */
  cpuNow(): number {
    for (const pid of this.pids()) {
      const c = cpuSecondsOf(pid);
      if (c !== null) this.lastCpu.set(pid, c);
    }
    let s = 0;
    for (const v of this.lastCpu.values()) s += v;
    return s;
  }

  rssNowMb(): number {
    let s = 0;
    for (const pid of this.pids()) s += memOf(pid)?.rss_mb ?? 0;
    return s;
  }

  /** Starts a measurement: CPU mark and peak-RSS sampling. */
  start(): void {
    this.stopSampling();
    this.cpu0 = this.cpuNow();
    this.peakRss = this.rssNowMb();
    this.samples = 1;
    this.timer = setInterval(() => {
      this.cpuNow();
      const r = this.rssNowMb();
      this.samples++;
      if (r > this.peakRss) this.peakRss = r;
    }, this.everyMs);
    this.timer.unref();
  }

  private stopSampling(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Ends the measurement: CPU seconds since start() and the peak summed RSS (MB). */
  stop(): { cpu_s: number; peak_rss_mb: number; samples: number } {
    const cpu = this.cpuNow() - this.cpu0;
    const r = this.rssNowMb();
    if (r > this.peakRss) this.peakRss = r;
    this.stopSampling();
    return { cpu_s: round2(cpu), peak_rss_mb: round1(this.peakRss), samples: this.samples };
  }
}
