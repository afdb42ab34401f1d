/**
 * The executor registry's store capability (issue #22 item 3): executors register themselves with
 * a heartbeat (group, address, ttl_ms, meta), and tasks with `callback.executor` are routed among
 * the live instances of their group at fire time. An instance is live while
 * `last_heartbeat + ttl_ms > now`. Instances expired for longer than EXPIRED_KEEP_MS are removed by
 * the next register or list call (expired ones stay listed until then, shown as not live).
 * Implementations: sqlite-executors.ts (standalone) and redis-executors.ts (cluster).
 */

/** One registered instance of an executor group. */
export interface ExecutorInstance {
  group: string;
  /** The instance's callback URL. */
  address: string;
  ttl_ms: number;
  /** Free-form JSON object the executor sent with its registration (null: none). */
  meta: Record<string, unknown> | null;
  /** ms epoch of the last register call (the heartbeat). */
  last_heartbeat: number;
  /** ms epoch of the first register call since the instance was last absent. */
  registered_at: number;
}

export interface ExecutorRegistration {
  group: string;
  address: string;
  ttl_ms: number;
  meta: Record<string, unknown> | null;
  now: number;
}

export interface ExecutorStore {
  /** Inserts or refreshes an instance (the heartbeat). `created`: it was not registered (or had expired away). */
  register(r: ExecutorRegistration): Promise<{ instance: ExecutorInstance; created: boolean }>;
  /** Removes an instance; false when it was not registered. */
  unregister(group: string, address: string): Promise<boolean>;
  /** The live instances of a group (last_heartbeat + ttl_ms > now), ordered by address. */
  live(group: string, now: number): Promise<ExecutorInstance[]>;
  /** Every registered instance of every group (live or recently expired), ordered by group then address. */
  list(now: number): Promise<ExecutorInstance[]>;
}

/** How long an expired instance stays listed (as not live) before it is removed. */
export const EXPIRED_KEEP_MS = 600_000;

export const isLive = (i: Pick<ExecutorInstance, 'last_heartbeat' | 'ttl_ms'>, now: number): boolean => i.last_heartbeat + i.ttl_ms > now;
