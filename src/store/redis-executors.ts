/**
 * The executor registry on Redis: one hash of instances under the cluster-wide hash tag, with
 * sorted sets of their expiry times (key layout in src/redis/keys.ts and src/redis/lua/_exec.lua).
 * Every call is one script on one key, so it works on Redis Cluster too. The registry is soft
 * state refreshed by heartbeats: its writes do not wait for replicas.
 */
import type { StoreConnection } from './redis-conn.js';
import { EXPIRED_KEEP_MS, type ExecutorInstance, type ExecutorRegistration, type ExecutorStore } from './executors.js';

/** Decodes a stored "<last_heartbeat>|<ttl_ms>|<registered_at>|<meta JSON>" value. */
function decode(group: string, address: string, v: string): ExecutorInstance {
  const [hb, ttl, reg] = v.split('|', 3);
  const metaAt = hb!.length + ttl!.length + reg!.length + 3;
  const meta = v.slice(metaAt);
  return {
    group,
    address,
    ttl_ms: Number(ttl),
    meta: meta === '' ? null : (JSON.parse(meta) as Record<string, unknown>),
    last_heartbeat: Number(hb),
    registered_at: Number(reg),
  };
}

const byAddress = (a: ExecutorInstance, b: ExecutorInstance): number => (a.group < b.group ? -1 : a.group > b.group ? 1 : a.address < b.address ? -1 : a.address > b.address ? 1 : 0);

export function redisExecutors(conn: StoreConnection): ExecutorStore {
  const key = conn.keys.executors();
  return {
    register: (r: ExecutorRegistration) =>
      conn.guard(async () => {
        const [created, reg] = (await conn.runOn('execRegister', key, [r.group, r.address, r.ttl_ms, r.now, r.meta === null ? '' : JSON.stringify(r.meta), EXPIRED_KEEP_MS])) as [number, string];
        return { instance: { group: r.group, address: r.address, ttl_ms: r.ttl_ms, meta: r.meta, last_heartbeat: r.now, registered_at: Number(reg) }, created: created === 1 };
      }),
    unregister: (group, address) => conn.guard(async () => (await conn.runOn('execUnregister', key, [group, address])) === 1),
    live: (group, now) =>
      conn.guard(async () => {
        const r = (await conn.runOn('execLive', key, [group, now])) as string[];
        const out: ExecutorInstance[] = [];
        for (let i = 0; i + 1 < r.length; i += 2) out.push(decode(group, r[i]!, r[i + 1]!));
        return out.sort(byAddress);
      }),
    list: (now) =>
      conn.guard(async () => {
        const r = (await conn.runOn('execList', key, [now, EXPIRED_KEEP_MS])) as string[];
        const out: ExecutorInstance[] = [];
        for (let i = 0; i + 1 < r.length; i += 2) {
          const f = r[i]!;
          const nl = f.indexOf('\n');
          out.push(decode(f.slice(0, nl), f.slice(nl + 1), r[i + 1]!));
        }
        return out.sort(byAddress);
      }),
  };
}
