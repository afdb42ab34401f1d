/**
 * Routing: which callback URL(s) a fire of a task with several targets (`callback.urls`) goes to.
 * Each `route` value of a task is a small strategy; a Router holds one per route name and the
 * state they share (the round-robin counters). A task with one URL goes to its own URL.
 */
import { rendezvous } from '../cluster/index.js';
import type { RouteStrategy as RouteName, Task } from '../task/index.js';

/**
 * What a fire does with its targets. single: one URL (the job's own when `urls` is empty).
 * failover: the first, then the next ones on failure. broadcast: every URL, each a shard.
 */
export interface Route {
  mode: 'single' | 'failover' | 'broadcast';
  urls: readonly string[];
}

/** What a strategy sees of a task: its id and its URLs (two or more). */
export interface RoutedTask {
  id: string;
  urls: readonly string[];
}

/** One way of choosing among a task's URLs. */
export interface RoutingStrategy {
  pick(task: RoutedTask): Route;
}

/** The route of a task with one callback URL: its job as built (the same object every time). */
export const OWN_URL: Readonly<Route> = Object.freeze({ mode: 'single' as const, urls: [] as readonly string[] });

/** Round-robin counters kept at most for this many tasks (then started over). */
const RR_MAX_TASKS = 100_000;

export class RoundRobin implements RoutingStrategy {
  private readonly next = new Map<string, number>();
  pick(task: RoutedTask): Route {
    const n = this.next.get(task.id) ?? 0;
    this.next.set(task.id, n + 1);
    if (this.next.size > RR_MAX_TASKS) this.next.clear();
    return { mode: 'single', urls: [task.urls[n % task.urls.length]!] };
  }
}

export const failover: RoutingStrategy = { pick: (t) => ({ mode: 'failover', urls: t.urls }) };
export const broadcast: RoutingStrategy = { pick: (t) => ({ mode: 'broadcast', urls: t.urls }) };
export const randomPick = (random: () => number = Math.random): RoutingStrategy => ({
  pick: (t) => ({ mode: 'single', urls: [t.urls[Math.floor(random() * t.urls.length)]!] }),
});
/** The same task always goes to the same URL (rendezvous hashing: removing a URL moves only its tasks). */
export const consistentHash: RoutingStrategy = { pick: (t) => ({ mode: 'single', urls: [rendezvous(t.id, t.urls) ?? t.urls[0]!] }) };

export class Router {
  /** The strategies over a task's URLs; the ones over live executor instances are in ./executors.ts. */
  private readonly strategies: Partial<Record<RouteName, RoutingStrategy>>;

  constructor(overrides: Partial<Record<RouteName, RoutingStrategy>> = {}) {
    this.strategies = { failover, broadcast, round_robin: new RoundRobin(), random: randomPick(), consistent_hash: consistentHash, ...overrides };
  }

  /** The route of strategy `name` over `task.urls` (a strategy it does not have: failover). */
  pick(name: RouteName, task: RoutedTask): Route {
    return (this.strategies[name] ?? failover).pick(task);
  }

  /** The target(s) of a fire of `task`, by its route (default failover). */
  route(task: Pick<Task, 'id' | 'callback'>): Route {
    const urls = task.callback.urls;
    if (!urls || urls.length <= 1) return OWN_URL;
    return this.pick(task.callback.route ?? 'failover', { id: task.id, urls });
  }
}
