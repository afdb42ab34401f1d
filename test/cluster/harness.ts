/**
 * Shared pieces of the cluster tests: a connected client for a test Redis, a unique key prefix per
 * test, and a TaskStore harness (for the store contract) that holds every slot's lease like an
 * owner would, and can hand the slots to "another node" to make the old tokens stale.
 */
import { pino } from 'pino';
import { connectRedis, createRedisClient, evalScript, RedisKeys, script, type RedisClient } from '../../src/redis/index.js';
import { RedisTaskStore } from '../../src/store/redis.js';
import type { StoreHarness } from '../component/store-contract.js';

export const silentLog = pino({ level: 'silent' });
let seq = 0;

/** A key prefix no other test uses (tests share one Redis). */
export const uniquePrefix = (name: string): string => `${name}${process.pid}x${++seq}`;

export async function connect(url: string, o: { cluster?: boolean; timeoutMs?: number; name?: string } = {}): Promise<RedisClient> {
  const c = createRedisClient({ url, cluster: o.cluster, commandTimeoutMs: o.timeoutMs ?? 5000, name: o.name ?? 'xcron-test', log: silentLog });
  await connectRedis(c, 20_000, silentLog);
  return c;
}

/** Takes every slot's lease for `node` (as RedisOwnership would) and returns the tokens. */
export async function acquireAll(client: RedisClient, prefix: string, slots: number, node: string, leaseMs = 600_000): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  await Promise.all(
    Array.from({ length: slots }, async (_, s) => {
      const [ok, epoch] = (await evalScript(client, script('acquire'), [new RedisKeys(prefix).slot(s)], [node, leaseMs])) as [number, number | string];
      if (ok !== 1) throw new Error(`slot ${s} is held: ${String(epoch)}`);
      out.set(s, Number(epoch));
    }),
  );
  return out;
}

/** Drops every slot's lease (as if it expired). */
export async function dropLeases(client: RedisClient, prefix: string, slots: number): Promise<void> {
  await Promise.all(Array.from({ length: slots }, (_, s) => client.del(new RedisKeys(prefix).lease(s))));
}

/** The store-contract harness over a Redis (single server or cluster). */
export async function redisHarness(url: string, o: { cluster?: boolean; slots: number }): Promise<StoreHarness> {
  const client = await connect(url, { cluster: o.cluster });
  const prefix = uniquePrefix('contract');
  const store = new RedisTaskStore({ client, prefix, slots: o.slots, log: silentLog });
  let generation = 1;
  let tokens = await acquireAll(client, prefix, o.slots, `owner-${generation}`);
  return {
    store,
    token: (slot) => {
      const t = tokens.get(slot);
      if (t === undefined) throw new Error(`no token for slot ${slot}`);
      return t;
    },
    invalidate: async () => {
      // the leases expire and another node takes every slot: new epochs
      await dropLeases(client, prefix, o.slots);
      generation++;
      tokens = await acquireAll(client, prefix, o.slots, `owner-${generation}`);
    },
    cleanup: async () => {
      await store.close();
    },
  };
}
