/**
 * RedisOwnership in-process against a real redis-server: membership, rendezvous balance, handover
 * on join and on graceful stop, take-over after a crash, stop-firing-at-once on Redis trouble and on
 * a frozen process, fencing through the store, and the fixed slot count.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { preferredOwner, RedisOwnership } from '../../src/cluster/redis.js';
import { ConfigError } from '../../src/errors.js';
import { evalScript, RedisKeys, script, type RedisClient } from '../../src/redis/index.js';
import { RedisTaskStore } from '../../src/store/redis.js';
import { fireId } from '../../src/task/index.js';
import { T0, makeTask } from '../component/fixtures.js';
import { RedisServer, stopAllRedis } from '../helpers/redis.js';
import { connect, silentLog, uniquePrefix } from './harness.js';

const SLOTS = 32;
const LEASE = 1000;

let redis: RedisServer;
beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  await stopAllRedis();
});

/** An ownership instance with its own connection, recording every event with a timestamp. */
interface Node {
  o: RedisOwnership;
  client: RedisClient;
  /** `members` (acquired only): the node's live members when it emitted the event (its last round's view). */
  events: { at: number; kind: 'acquired' | 'lost'; slots: number[]; members?: readonly string[] }[];
  /** Added to the monotonic clock (simulates a frozen process whose timers did not run). */
  skew: { ms: number };
}
const nodes: Node[] = [];

async function node(prefix: string, id: string, o: { slots?: number; lease?: number; url?: string } = {}): Promise<Node> {
  const client = await connect(o.url ?? redis.url, { timeoutMs: Math.floor((o.lease ?? LEASE) / 3), name: id });
  const skew = { ms: 0 };
  const own = new RedisOwnership({ client, nodeId: id, slots: o.slots ?? SLOTS, leaseMs: o.lease ?? LEASE, prefix, log: silentLog, refreshMs: 0, now: () => performance.now() + skew.ms });
  const n: Node = { o: own, client, events: [], skew };
  own.on('acquired', (slots) => n.events.push({ at: performance.now(), kind: 'acquired', slots, members: [...own.liveMembers()] }));
  own.on('lost', (slots) => n.events.push({ at: performance.now(), kind: 'lost', slots }));
  nodes.push(n);
  return n;
}

afterEach(async () => {
  for (const n of nodes.splice(0)) {
    await n.o.stop().catch(() => undefined);
    n.client.disconnect();
  }
});

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** True when every slot is owned by exactly one of `ns` and that owner is the rendezvous choice among them. */
function balanced(ns: Node[]): boolean {
  const ids = ns.map((n) => n.o.nodeId);
  for (let s = 0; s < SLOTS; s++) {
    const owners = ns.filter((n) => n.o.tokenFor(s) !== null);
    if (owners.length !== 1 || owners[0]!.o.nodeId !== preferredOwner(s, ids)) return false;
  }
  return true;
}

/** Replays the events of several nodes in time order; fails if a slot ever had two owners. */
function assertNeverTwoOwners(ns: Node[]): void {
  const all = ns.flatMap((n) => n.events.map((e) => ({ ...e, node: n.o.nodeId }))).sort((a, b) => a.at - b.at || (a.kind === 'lost' ? -1 : 1));
  const owner = new Map<number, string>();
  for (const e of all) {
    for (const s of e.slots) {
      if (e.kind === 'lost') {
        if (owner.get(s) === e.node) owner.delete(s);
      } else {
        const cur = owner.get(s);
        if (cur !== undefined && cur !== e.node) throw new Error(`slot ${s} acquired by ${e.node} while ${cur} still owned it`);
        owner.set(s, e.node);
      }
    }
  }
}

describe('RedisOwnership', () => {
  it('one node owns every slot; tokens are the slot epochs; describe() shows owner and epoch', async () => {
    const prefix = uniquePrefix('own1');
    const a = await node(prefix, 'a');
    await a.o.start();
    expect(a.o.ownedSlots()).toEqual(Array.from({ length: SLOTS }, (_, i) => i));
    expect(a.o.isMember()).toBe(true);
    const d = await a.o.describe();
    expect(d.node).toBe('a');
    expect(d.members).toEqual(['a']);
    expect(d.slots).toHaveLength(SLOTS);
    for (const s of d.slots) expect(s).toEqual({ slot: s.slot, owner: 'a', epoch: a.o.tokenFor(s.slot) });
  });

  it('a joining node gets its rendezvous share; a slot never has two owners; graceful stop hands everything back', async () => {
    const prefix = uniquePrefix('own2');
    const a = await node(prefix, 'a');
    await a.o.start();
    const b = await node(prefix, 'b');
    await b.o.start();
    const c = await node(prefix, 'c');
    await c.o.start();
    await until('three-way balance', () => balanced([a, b, c]));
    for (const n of [a, b, c]) expect(n.o.ownedSlots().length).toBeGreaterThan(0);
    expect((await a.o.describe()).members).toEqual(['a', 'b', 'c']);

    await b.o.stop();
    expect(b.o.ownedSlots()).toEqual([]);
    expect(b.o.isMember()).toBe(false);
    await until('a and c own everything', () => balanced([a, c]));
    assertNeverTwoOwners([a, b, c]);
  });

  it('after a crash (its connection cut) the node stops firing at once and the others take its slots after the lease', async () => {
    const prefix = uniquePrefix('own3');
    const a = await node(prefix, 'a');
    const b = await node(prefix, 'b');
    await a.o.start();
    await b.o.start();
    await until('balance', () => balanced([a, b]));
    const bSlots = b.o.ownedSlots();
    expect(bSlots.length).toBeGreaterThan(0);

    const cut = performance.now();
    b.client.disconnect(); // renewals now fail: b must give up every slot on its next round
    await until('b drops everything', () => b.o.ownedSlots().length === 0);
    const lostAt = b.events.filter((e) => e.kind === 'lost').at(-1)!.at;
    expect(b.o.isMember()).toBe(false);
    for (const s of bSlots) expect(b.o.tokenFor(s)).toBeNull();

    await until('a owns every slot', () => a.o.ownedSlots().length === SLOTS);
    const takenAt = a.events.filter((e) => e.kind === 'acquired').at(-1)!.at;
    // b stopped before a could take over (the leases were still valid when b gave up)
    expect(lostAt).toBeLessThan(takenAt);
    assertNeverTwoOwners([a, b]);
    console.log(`ownership: connection cut -> b stopped firing after ${Math.round(lostAt - cut)} ms, a owned b's slots after ${Math.round(takenAt - cut)} ms (lease ${LEASE} ms)`);
  });

  it('kill, then a freeze of the node chosen for part of its slots: the survivor takes them all before the frozen node leaves, and keeps them', async () => {
    // Issue 27, the two-step takeover: a's leases expire while b, chosen by rendezvous for part of
    // a's slots, is frozen but still a member. c must take those too, at once, not wait for b to
    // leave the member list or for two more rounds; and must not hand them back to b while b is silent.
    const lease = 5000; // rounds every 1 s: wide gaps between the steps below on a loaded machine
    const prefix = uniquePrefix('own8');
    const [a, b, c] = [await node(prefix, 'a', { lease }), await node(prefix, 'b', { lease }), await node(prefix, 'c', { lease })];
    for (const n of [a, b, c]) await n.o.start();
    await until('three-way balance', () => balanced([a, b, c]), 30_000);
    const aSlots = a.o.ownedSlots();
    const bShare = aSlots.filter((s) => preferredOwner(s, ['b', 'c']) === 'b');
    expect(bShare.length).toBeGreaterThan(0);
    const spy = await connect(redis.url, { name: 'spy' });
    try {
      const members = new RedisKeys(prefix).members();
      const seen = async (id: string): Promise<number> => Number(await spy.zscore(members, id));
      const cBefore = c.events.length;
      a.client.disconnect(); // killed: no more heartbeats or renewals; its leases expire in Redis
      await new Promise((r) => setTimeout(r, 50)); // a heartbeat already in flight lands first
      const aLast = await seen('a');
      // Frozen 0.6 to 1.6 rounds after a's last heartbeat: b is still a live member when a's leases
      // expire (it leaves the list 0.6-1.6 s later), and is frozen before its own takeover round.
      await until("b's heartbeat 0.6 s after a's last one", async () => (await seen('b')) > aLast + 600, 10_000);
      b.client.disconnect();

      await until("c owns every slot of a's", () => aSlots.every((s) => c.o.tokenFor(s) !== null), 4 * lease);
      // The acquisition that completed the set, in c's event order.
      const covered = new Set<number>();
      let completing: Node['events'][number] | undefined;
      for (const e of c.events.slice(cBefore)) {
        if (e.kind !== 'acquired' || completing) continue;
        for (const s of e.slots) covered.add(s);
        if (aSlots.every((s) => covered.has(s))) completing = e;
      }
      expect(completing).toBeDefined();
      // Taken beyond c's fair share while b was still a member, not after b left.
      expect(completing!.members).toContain('b');

      await until('b leaves the member list', () => !c.o.isLive('b'), 4 * lease);
      await until('c owns every slot', () => c.o.ownedSlots().length === SLOTS, 4 * lease);
      // Nothing was handed back to the frozen b meanwhile.
      expect(c.events.slice(cBefore).filter((e) => e.kind === 'lost')).toEqual([]);
      assertNeverTwoOwners([a, b, c]);
    } finally {
      spy.disconnect();
    }
  }, 60_000);

  it('a frozen process (timers late by twice the lease) answers no token and emits lost', async () => {
    const prefix = uniquePrefix('own4');
    const a = await node(prefix, 'a');
    await a.o.start();
    expect(a.o.tokenFor(0)).not.toBeNull();
    a.skew.ms = 2 * LEASE; // as if the process had been stopped for 2 leases
    expect(a.o.tokenFor(0)).toBeNull();
    expect(a.o.ownedSlots()).toEqual([]);
    expect(a.events.at(-1)).toMatchObject({ kind: 'lost' });
    expect(a.events.at(-1)!.slots).toHaveLength(SLOTS);
    a.skew.ms = 0;
    // the next round takes the slots again (its own leases), with new epochs
    await until('re-acquired', () => a.o.ownedSlots().length === SLOTS);
  });

  it('the store refuses the token of a node whose slot was taken over; reportFenced drops the slot', async () => {
    const prefix = uniquePrefix('own5');
    const a = await node(prefix, 'a', { lease: 600_000 });
    await a.o.start();
    const storeClient = await connect(redis.url);
    const store = new RedisTaskStore({ client: storeClient, prefix, slots: SLOTS, log: silentLog });
    try {
      const t = makeTask({ id: 'fence-me', slots: SLOTS });
      await store.create(t);
      const stale = a.o.tokenFor(t.slot)!;
      // another node takes the slot behind a's back (a's lease "expired"; a long lease keeps a from noticing by itself)
      await storeClient.del(new RedisKeys(prefix).lease(t.slot));
      const [ok, fresh] = (await evalScript(storeClient, script('acquire'), [new RedisKeys(prefix).slot(t.slot)], ['b', 60_000])) as [number, number];
      expect(ok).toBe(1);
      expect(fresh).toBeGreaterThan(stale);
      const req = { slot: t.slot, token: stale, task_id: t.id, expected: t.next_fire_time!, next: t.next_fire_time! + 60_000, now: T0, run: { run_id: fireId(t.id, t.next_fire_time!), node: 'a', status: 'PENDING' as const, error: null } };
      expect(await store.commitFires([req])).toEqual(['fenced']);
      a.o.reportFenced(t.slot);
      expect(a.o.tokenFor(t.slot)).toBeNull();
      expect(a.events.at(-1)).toEqual({ at: expect.any(Number) as number, kind: 'lost', slots: [t.slot] });
      expect(await store.commitFires([{ ...req, token: fresh, run: { ...req.run, node: 'b' } }])).toEqual(['committed']);
    } finally {
      await store.close();
    }
  });

  it('Redis down: every slot is lost at once and isMember() is false; back: the slots are owned again', async () => {
    const r = await RedisServer.start();
    const prefix = uniquePrefix('own6');
    const a = await node(prefix, 'a', { url: r.url });
    await a.o.start();
    expect(a.o.ownedSlots()).toHaveLength(SLOTS);
    await r.kill();
    await until('all lost', () => a.o.ownedSlots().length === 0);
    expect(a.o.isMember()).toBe(false);
    await r.restart();
    await until('owned again', () => a.o.ownedSlots().length === SLOTS && a.o.isMember(), 20_000);
  });

  it('a failed lease read or take (a timeout under load) keeps the renewed slots and is retried next round', async () => {
    const prefix = uniquePrefix('own7');
    const a = await node(prefix, 'a');
    await a.o.start();
    expect(a.o.ownedSlots()).toHaveLength(SLOTS);
    // b's reads of the other leases and its takes fail while `broken` is set; heartbeats and
    // renewals (other scripts) go through.
    const broken = { on: false };
    const raw = await connect(redis.url, { timeoutMs: Math.floor(LEASE / 3), name: 'b' });
    const acquireSha = script('acquire').sha;
    const client = new Proxy(raw, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (typeof v !== 'function') return v;
        if (prop === 'get') return (...args: unknown[]) => (broken.on ? Promise.reject(new Error('Command timed out')) : (v as (...a: unknown[]) => unknown).apply(target, args));
        if (prop === 'evalsha') return (...args: unknown[]) => (broken.on && args[0] === acquireSha ? Promise.reject(new Error('Command timed out')) : (v as (...a: unknown[]) => unknown).apply(target, args));
        return (v as (...a: unknown[]) => unknown).bind(target);
      },
    });
    const skew = { ms: 0 };
    const b: Node = { o: new RedisOwnership({ client, nodeId: 'b', slots: SLOTS, leaseMs: LEASE, prefix, log: silentLog, refreshMs: 0, now: () => performance.now() + skew.ms }), client: raw, events: [], skew };
    b.o.on('acquired', (slots) => b.events.push({ at: performance.now(), kind: 'acquired', slots }));
    b.o.on('lost', (slots) => b.events.push({ at: performance.now(), kind: 'lost', slots }));
    nodes.push(b);
    await b.o.start();
    await until('balance', () => balanced([a, b]));
    const mine = b.o.ownedSlots();
    expect(mine.length).toBeGreaterThan(0);
    const lostBefore = b.events.filter((e) => e.kind === 'lost').length;

    broken.on = true;
    // a leaves: its slots are free, but b can neither read nor take them while broken
    await a.o.stop();
    const deadline = performance.now() + 4 * LEASE;
    while (performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      // b keeps firing its own slots the whole time: its renewals succeed
      for (const s of mine) expect(b.o.tokenFor(s)).not.toBeNull();
    }
    expect(b.events.filter((e) => e.kind === 'lost').length).toBe(lostBefore);
    expect(b.o.ownedSlots().sort((x, y) => x - y)).toEqual([...mine].sort((x, y) => x - y));

    broken.on = false;
    await until('b takes the free slots', () => b.o.ownedSlots().length === SLOTS);
    assertNeverTwoOwners([a, b]);
  });

  it('a node started with another slot count refuses to start and says why', async () => {
    const prefix = uniquePrefix('own7');
    const a = await node(prefix, 'a');
    await a.o.start();
    const b = await node(prefix, 'b', { slots: SLOTS * 2 });
    const err = await b.o.start().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(`'cluster.slots' is ${SLOTS * 2}`);
    expect((err as Error).message).toContain(`uses ${SLOTS} slots`);
    expect(b.o.ownedSlots()).toEqual([]);
  });
});
