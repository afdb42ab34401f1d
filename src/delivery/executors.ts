/**
 * Routing among the live instances of an executor group (`callback.executor`, issue #22 item 3).
 * The strategies over a task's URLs (./routing.ts) apply to the live addresses as they are, and
 * five more need live instances: `first`, `last`, `lru` (least recently used), `lfu` (least
 * frequently used) and `busy_over` (the first instance without a run of this task in flight here).
 * Their state (use order, use counts, runs in flight per instance) is this node's: a task's fires
 * are made by its slot's owner, so it stays with the task while ownership does.
 *
 * LiveGroups caches each group's live list for LIVE_CACHE_MS per node: a fire may still go to an
 * instance up to that long after it expired or unregistered (its callback then fails and is
 * retried as usual), and a new instance gets fires at most that long after its registration.
 */
import type { Clock } from '../clock/index.js';
import type { ExecutorStore } from '../store/executors.js';
import type { RouteStrategy as RouteName } from '../task/index.js';
import { Router, type Route } from './routing.js';

/** How long a node reuses a group's live list (ms): the staleness bound above. */
export const LIVE_CACHE_MS = 500;
/** Per-task state is kept at most for this many tasks (then started over). */
const MAX_TASKS = 100_000;

/** The live instance addresses of each group, read from the store and cached briefly. */
export class LiveGroups {
  private readonly cache = new Map<string, { at: number; addrs: Promise<string[]> }>();

  constructor(
    private readonly registry: ExecutorStore | undefined,
    private readonly clock: Clock,
  ) {}

  /** The group's live addresses (ordered by address). Rejects when the store cannot answer. */
  live(group: string): Promise<string[]> {
    const now = this.clock.now();
    const hit = this.cache.get(group);
    if (hit && now - hit.at < LIVE_CACHE_MS) return hit.addrs;
    if (!this.registry) return Promise.reject(new Error('this store has no executor registry'));
    const addrs = this.registry.live(group, now).then((list) => list.map((i) => i.address));
    if (this.cache.size >= MAX_TASKS) this.cache.clear();
    this.cache.set(group, { at: now, addrs });
    addrs.catch(() => this.cache.delete(group));
    return addrs;
  }

  /** Forgets a group's cached list (after a registration change seen by this node). */
  forget(group: string): void {
    this.cache.delete(group);
  }
}

/** Per task: a value per address (last use order for lru, use counts for lfu). */
class PerTask {
  private readonly m = new Map<string, Map<string, number>>();
  of(taskId: string): Map<string, number> {
    let x = this.m.get(taskId);
    if (!x) {
      if (this.m.size >= MAX_TASKS) this.m.clear();
      this.m.set(taskId, (x = new Map()));
    }
    return x;
  }
}

/** The address with the lowest value (absent counts as -1), the first in order on a tie. */
function lowest(addrs: readonly string[], values: Map<string, number>): string {
  let best = addrs[0]!;
  let bestV = values.get(best) ?? -1;
  for (const a of addrs) {
    const v = values.get(a) ?? -1;
    if (v < bestV) {
      best = a;
      bestV = v;
    }
  }
  return best;
}

const single = (url: string): Route => ({ mode: 'single', urls: [url] });

export class ExecutorRouting {
  private readonly router = new Router();
  private readonly lastUse = new PerTask();
  private readonly useCount = new PerTask();
  private seq = 0;
  /** Runs in flight per task: run id -> the instance it went to (busy_over). */
  private readonly running = new Map<string, Map<string, string>>();

  /** `inFlight(runId)`: the run is still in flight on this node (an async run until its report). */
  constructor(private readonly inFlight: (runId: string) => boolean) {}

  /**
   * The route of a fire of `taskId` over the live `addrs` (at least one), or null when busy_over
   * finds every instance busy with this task.
   */
  pick(taskId: string, route: RouteName, addrs: readonly string[]): Route | null {
    switch (route) {
      case 'first':
        return single(addrs[0]!);
      case 'last':
        return single(addrs[addrs.length - 1]!);
      case 'lru': {
        const m = this.lastUse.of(taskId);
        const a = lowest(addrs, m);
        m.set(a, this.seq++);
        return single(a);
      }
      case 'lfu': {
        const m = this.useCount.of(taskId);
        const a = lowest(addrs, m);
        m.set(a, (m.get(a) ?? 0) + 1);
        return single(a);
      }
      case 'busy_over': {
        const a = addrs.find((x) => !this.busy(taskId, x));
        return a === undefined ? null : single(a);
      }
      default:
        return this.router.pick(route, { id: taskId, urls: addrs });
    }
  }

  /** Notes that run `runId` of the task went to `address` (busy while it is in flight here). */
  started(taskId: string, runId: string, address: string): void {
    let m = this.running.get(taskId);
    if (!m) {
      if (this.running.size >= MAX_TASKS) this.running.clear();
      this.running.set(taskId, (m = new Map()));
    }
    m.set(runId, address);
  }

  private busy(taskId: string, address: string): boolean {
    const m = this.running.get(taskId);
    if (!m) return false;
    let busy = false;
    for (const [runId, a] of m) {
      if (!this.inFlight(runId)) m.delete(runId);
      else if (a === address) busy = true;
    }
    if (m.size === 0) this.running.delete(taskId);
    return busy;
  }
}
