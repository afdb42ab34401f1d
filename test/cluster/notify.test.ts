/**
 * ClusterNotifier over a real redis-server: changes to a slot this node owns go straight to its
 * scheduler; others are published and acted on by the owner only (re-reading the task from the
 * store); manual runs are delivered by the owner; report closures reach every node; a reconnected
 * change feed makes the owner reload its slots.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ClusterNotifier, type ChangeTarget, type OwnerView } from '../../src/cluster/notify.js';
import type { RedisClient } from '../../src/redis/index.js';
import { RedisTaskStore } from '../../src/store/redis.js';
import type { Task } from '../../src/task/index.js';
import { makeTask } from '../component/fixtures.js';
import { RedisServer, stopAllRedis } from '../helpers/redis.js';
import { connect, silentLog, uniquePrefix } from './harness.js';

const SLOTS = 8;
let redis: RedisServer;
beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  await stopAllRedis();
});

type Event = { kind: 'changed'; id: string; state: string } | { kind: 'removed'; id: string } | { kind: 'deliver'; id: string } | { kind: 'released'; id: string };

interface Side {
  n: ClusterNotifier;
  events: Event[];
  owned: Set<number>;
  reloads: string[];
  clients: RedisClient[];
}
const sides: Side[] = [];

async function side(prefix: string, store: RedisTaskStore, owned: number[]): Promise<Side> {
  const pub = await connect(redis.url);
  const sub = await connect(redis.url);
  const s: Side = { n: null as unknown as ClusterNotifier, events: [], owned: new Set(owned), reloads: [], clients: [pub, sub] };
  const ownership: OwnerView = { tokenFor: (slot) => (s.owned.has(slot) ? 1 : null), reannounce: (reason) => s.reloads.push(reason) };
  s.n = new ClusterNotifier({ pub, sub, prefix, ownership, store, log: silentLog });
  const target: ChangeTarget = {
    cancelAhead: () => Promise.resolve(),
    taskChanged: (t: Task) => s.events.push({ kind: 'changed', id: t.id, state: t.state }),
    taskRemoved: (id) => s.events.push({ kind: 'removed', id }),
    deliverRun: (id) => {
      s.events.push({ kind: 'deliver', id });
      return Promise.resolve();
    },
    releaseReported: (id) => s.events.push({ kind: 'released', id }),
  };
  s.n.attach(target);
  await s.n.start();
  sides.push(s);
  return s;
}

afterEach(async () => {
  for (const s of sides.splice(0)) {
    await s.n.close();
    for (const c of s.clients) c.disconnect();
  }
});

async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('ClusterNotifier', () => {
  it('routes changes to the owner of the slot, which re-reads the task from the store', async () => {
    const prefix = uniquePrefix('notify');
    const storeClient = await connect(redis.url);
    const store = new RedisTaskStore({ client: storeClient, prefix, slots: SLOTS, log: silentLog });
    try {
      const t = makeTask({ id: 'routed', slots: SLOTS });
      const other = (t.slot + 1) % SLOTS;
      const owner = await side(prefix, store, [t.slot]);
      const api = await side(prefix, store, [other]);
      const bystander = await side(prefix, store, [(t.slot + 2) % SLOTS]);
      await store.create(t);

      // through the owner itself: straight to its scheduler, nothing published
      owner.n.taskChanged(t);
      expect(owner.events).toEqual([{ kind: 'changed', id: 'routed', state: 'active' }]);

      // through another node: published; the owner re-reads the stored task (now paused)
      await store.updateTask(t.id, { state: 'paused', update_time: t.update_time + 1 }, { state: 'active', next_fire_time: t.next_fire_time });
      api.n.taskChanged(t); // carries the stale copy: the owner must not use it
      await until('the owner heard of the change', () => owner.events.length === 2);
      expect(owner.events[1]).toEqual({ kind: 'changed', id: 'routed', state: 'paused' });

      // a manual run and a delete through another node
      api.n.runQueued('routed:123', t.slot);
      await until('the owner delivers the manual run', () => owner.events.some((e) => e.kind === 'deliver'));
      await store.delete(t.id);
      api.n.taskRemoved(t.id, t.slot);
      await until('the owner drops the task', () => owner.events.some((e) => e.kind === 'removed'));
      expect(owner.events.slice(2)).toEqual([
        { kind: 'deliver', id: 'routed:123' },
        { kind: 'removed', id: 'routed' },
      ]);
      // a change message for a task deleted meanwhile: the owner drops it (re-read finds nothing)
      api.n.taskChanged(t);
      await until('the owner drops the vanished task', () => owner.events.length === 5);
      expect(owner.events[4]).toEqual({ kind: 'removed', id: 'routed' });

      // a report closure reaches every node (whoever awaits the run lets go)
      api.n.runReported('routed:123', t.slot);
      await until('every node released the run', () => [owner, api, bystander].every((s) => s.events.some((e) => e.kind === 'released')));
      // nobody but the owner acted on the slot's other messages
      expect(bystander.events).toEqual([{ kind: 'released', id: 'routed:123' }]);
      expect(api.events.filter((e) => e.kind !== 'released')).toEqual([{ kind: 'removed', id: 'routed' }]); // its own local drop
    } finally {
      await store.close();
    }
  });

  it('a reconnected change feed makes the node reload its slots (messages may have been lost)', async () => {
    const r = await RedisServer.start();
    const prefix = uniquePrefix('feed');
    const storeClient = await connect(r.url);
    const store = new RedisTaskStore({ client: storeClient, prefix, slots: SLOTS, log: silentLog });
    const pub = await connect(r.url);
    const sub = await connect(r.url);
    const reloads: string[] = [];
    const n = new ClusterNotifier({ pub, sub, prefix, ownership: { tokenFor: () => 1, reannounce: (why) => reloads.push(why) }, store, log: silentLog });
    try {
      await n.start();
      expect(n.connected()).toBe(true);
      await r.kill();
      await until('the feed sees the loss', () => !n.connected());
      await r.restart();
      await until('the reload after the reconnect', () => reloads.length > 0, 15_000);
      expect(reloads).toEqual(['change feed reconnected']);
      expect(n.connected()).toBe(true);
    } finally {
      await n.close();
      pub.disconnect();
      await store.close();
      await r.destroy();
    }
  });
});
