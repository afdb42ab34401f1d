/**
 * Cluster mode assembled from the [cluster] config: three Redis connections (store, ownership,
 * change feed), the Redis store, the slot leases (RedisOwnership, src/cluster/redis.ts) and the
 * change feed (ClusterNotifier), with readiness and closing for the whole.
 */
import type { Logger } from 'pino';
import { StoreUnavailableError } from '../errors.js';
import { connectRedis, createRedisClient, type RedisClient } from '../redis/connection.js';
import { redactRedisUrl } from '../redis/url.js';
import { RedisTaskStore } from '../store/redis.js';
import type { TaskStore } from '../store/types.js';
import { ClusterNotifier } from './notify.js';
import { recoveryStore } from './recovery-store.js';
import { RedisOwnership } from './redis.js';

export interface ClusterSettings {
  redis_url: string;
  redis_cluster: boolean;
  redis_password: string;
  redis_tls: boolean;
  redis_sentinel_password?: string;
  min_replica_acks?: number;
  replica_ack_timeout_ms?: number;
  slots: number;
  lease_ms: number;
  key_prefix: string;
}

/** Everything cluster mode adds, built from the [cluster] config. */
export interface ClusterMode {
  store: RedisTaskStore;
  /** The store for the scheduler (recovery skips runs live nodes are delivering). */
  schedulerStore: TaskStore;
  ownership: RedisOwnership;
  notifier: ClusterNotifier;
  /** Readiness: a heartbeating member, a connected change feed and a connected store. */
  ready(): Promise<boolean>;
  /** Closes the change feed and the ownership connection (the store closes its own). Safe to call twice: the same promise. */
  close(): Promise<void>;
}

/**
 * Connects to Redis (three connections: store, ownership, change feed), checks the slot count and
 * builds the cluster parts. Throws ConfigError on a slot-count mismatch.
 */
export async function openClusterMode(o: { cluster: ClusterSettings; nodeId: string; log: Logger; connectTimeoutMs?: number }): Promise<ClusterMode> {
  const c = o.cluster;
  const log = o.log.child({ module: 'cluster' });
  const conn = (name: string, commandTimeoutMs: number): RedisClient =>
    createRedisClient({ url: c.redis_url, password: c.redis_password, tls: c.redis_tls, cluster: c.redis_cluster, sentinelPassword: c.redis_sentinel_password, commandTimeoutMs, name: `xcron:${o.nodeId}:${name}`, log });
  const replicaAcks = { count: c.min_replica_acks ?? 0, timeoutMs: c.replica_ack_timeout_ms ?? 1000 };
  // A WAIT must be able to use its whole timeout before the command times out.
  const storeClient = conn('store', replicaAcks.count > 0 ? Math.max(2000, replicaAcks.timeoutMs + 1000) : 2000);
  const ownClient = conn('ownership', Math.max(100, Math.floor(c.lease_ms / 3)));
  const subClient = conn('feed', 2000);
  const clients = [storeClient, ownClient, subClient];
  try {
    const timeout = o.connectTimeoutMs ?? 30_000;
    await Promise.all(clients.map((cl) => connectRedis(cl, timeout, log, redactRedisUrl(c.redis_url))));
  } catch (e) {
    for (const cl of clients) cl.disconnect();
    throw new StoreUnavailableError((e as Error).message);
  }
  const store = new RedisTaskStore({ client: storeClient, prefix: c.key_prefix, slots: c.slots, log: o.log.child({ module: 'store' }), replicaAcks });
  const ownership = new RedisOwnership({ client: ownClient, nodeId: o.nodeId, slots: c.slots, leaseMs: c.lease_ms, prefix: c.key_prefix, log });
  try {
    await ownership.checkSlots();
  } catch (e) {
    for (const cl of clients) cl.disconnect();
    throw e;
  }
  const notifier = new ClusterNotifier({ pub: storeClient, sub: subClient, prefix: c.key_prefix, ownership, store, log });
  await notifier.start();
  let closing: Promise<void> | null = null;
  return {
    store,
    schedulerStore: recoveryStore(store, ownership),
    ownership,
    notifier,
    // The store's own connection too: after a failover each connection finds the new primary on
    // its own, and a node whose store connection is still reconnecting would answer 503.
    ready: () => Promise.resolve(ownership.isMember() && notifier.connected() && storeClient.status === 'ready'),
    close: () =>
      (closing ??= (async () => {
        await notifier.close();
        await ownClient.quit().catch(() => ownClient.disconnect());
      })()),
  };
}
