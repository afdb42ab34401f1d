/**
 * The CPU time of API requests (the histogram xcron_http_request_cpu_seconds), measured with
 * process.cpuUsage() around a request. That call costs ~20 µs on Linux in a process with busy
 * threads (getrusage sums every thread), more than a whole createTask should cost, so under load it
 * is sampled: a request that starts while no other is in progress is always measured (its figure is
 * then its own cost), and of the requests that overlap others, one in SAMPLE_EVERY is. An
 * overlapping request's figure includes the others' CPU in the meantime, as before: an upper bound.
 */

/** One in this many overlapping requests is measured. */
export const SAMPLE_EVERY = 32;

export class CpuSampler {
  private inFlight = 0;
  private overlapped = 0;

  /** Call when a request starts; pass the result to end(). Null: this request is not measured. */
  start(): NodeJS.CpuUsage | null {
    const alone = this.inFlight === 0;
    this.inFlight++;
    if (alone || ++this.overlapped % SAMPLE_EVERY === 0) return process.cpuUsage();
    return null;
  }

  /** Call when the request ends: its CPU seconds, or undefined when it was not measured. */
  end(started: NodeJS.CpuUsage | null): number | undefined {
    this.inFlight--;
    if (started === null) return undefined;
    const d = process.cpuUsage(started);
    return (d.user + d.system) / 1e6;
  }
}
