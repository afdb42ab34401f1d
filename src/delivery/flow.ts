/**
 * Flow-control backends: where a flow key's limit is counted. `LocalFlow` counts in this process
 * (standalone); `RedisFlow` counts in Redis, so every node of a cluster shares one limit per key
 * (flowAcquire-1.lua: a sliding window of admissions for the rate, and lease-bounded permits for
 * the parallelism). The queue of fires waiting on a key is the scheduler's (src/scheduler/pacing.ts).
 */
import type { Clock } from '../clock/index.js';
import { evalScript, script, type RedisClient, type RedisKeys } from '../redis/index.js';
import type { FlowLimit } from '../task/index.js';

export interface FlowBackend {
  /**
   * Admits one fire of `holder` (its run id) under `key`'s limit: an admission counts in the rate
   * window and the holder takes a parallelism permit (held at most `leaseMs` unless released).
   * Returns 0 when admitted, else how long to wait (ms) before asking again.
   */
  tryAcquire(key: string, limit: FlowLimit, holder: string, leaseMs: number): Promise<number> | number;
  /** The holder's run ended: its parallelism permit is free again. */
  release(key: string, holder: string): Promise<void> | void;
}

/** A local wait on a full parallelism cap: a release here wakes the queue sooner. */
const LOCAL_PARALLEL_POLL_MS = 1000;

interface LocalKey {
  /** Admission times of the rate window, oldest first, from `head` on. */
  sent: number[];
  head: number;
  holders: Map<string, number>;
}

/** One process's flow limits (standalone), on the scheduler's clock. */
export class LocalFlow implements FlowBackend {
  private readonly keys = new Map<string, LocalKey>();

  constructor(private readonly clock: Clock) {}

  tryAcquire(key: string, limit: FlowLimit, holder: string, leaseMs: number): number {
    const now = this.clock.now();
    let k = this.keys.get(key);
    if (!k) {
      k = { sent: [], head: 0, holders: new Map() };
      this.keys.set(key, k);
    }
    let wait = 0;
    if (limit.parallelism > 0) {
      for (const [h, until] of k.holders) if (until <= now) k.holders.delete(h);
      if (!k.holders.has(holder) && k.holders.size >= limit.parallelism) wait = LOCAL_PARALLEL_POLL_MS;
    }
    if (limit.rate > 0) {
      while (k.head < k.sent.length && k.sent[k.head]! <= now - limit.period_ms) k.head++;
      if (k.head > 1024 && k.head * 2 > k.sent.length) {
        k.sent = k.sent.slice(k.head);
        k.head = 0;
      }
      if (k.sent.length - k.head >= limit.rate) wait = Math.max(wait, Math.max(1, k.sent[k.head]! + limit.period_ms - now));
    }
    if (wait > 0) return wait;
    if (limit.parallelism > 0) k.holders.set(holder, now + leaseMs);
    if (limit.rate > 0) k.sent.push(now);
    return 0;
  }

  release(key: string, holder: string): void {
    const k = this.keys.get(key);
    if (!k) return;
    k.holders.delete(holder);
    if (k.holders.size === 0 && k.head >= k.sent.length) this.keys.delete(key);
  }
}

/** The flow limits of a cluster, in its Redis (one script call per admission, one per release). */
export class RedisFlow implements FlowBackend {
  private readonly acquireScript = script('flowAcquire');
  private readonly releaseScript = script('flowRelease');

  constructor(
    private readonly client: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  async tryAcquire(key: string, limit: FlowLimit, holder: string, leaseMs: number): Promise<number> {
    const r = await evalScript(this.client, this.acquireScript, [this.keys.flow(key)], [limit.rate, limit.period_ms, limit.parallelism, holder, leaseMs]);
    return Number(r);
  }

  async release(key: string, holder: string): Promise<void> {
    await evalScript(this.client, this.releaseScript, [this.keys.flow(key)], [holder]);
  }
}
