/**
 * The scheduler on the Redis store with fires committed ahead (claimFires / uncommitHeld), in
 * process, against a real redis-server and the real clock: a held fire is claimed at its due time
 * and delivered once, also when a task snapshot read before the commit arrives afterwards (a scan
 * page, a notification), and when another node undid the commit and the owner commits the same
 * fire again; and a commit its replica did not confirm goes out once it does (a retried commit).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SystemClock } from '../../src/clock/index.js';
import { LocalOwnership, slotOf } from '../../src/cluster/index.js';
import { recoveryStore, type RedisOwnership } from '../../src/cluster/redis.js';
import type { DeliveryJob, DeliveryResult } from '../../src/delivery/index.js';
import { Scheduler, type Deliverer, type FiredEvent } from '../../src/scheduler/index.js';
import type { RedisClient } from '../../src/redis/index.js';
import { RedisTaskStore } from '../../src/store/redis.js';
import type { Run, Task } from '../../src/task/index.js';
import { oneShot } from '../component/fixtures.js';
import { RedisServer, stopAllRedis } from '../helpers/redis.js';
import { acquireAll, connect, silentLog, uniquePrefix } from './harness.js';

const SLOTS = 16;
const WAIT = 20_000;

let redis: RedisServer;
beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  await stopAllRedis();
});

/** Records every delivery and answers 200. */
class Recorder implements Deliverer {
  readonly jobs: DeliveryJob[] = [];
  /** When each delivery was handed over (ms epoch). */
  readonly at: number[] = [];
  deliver(job: DeliveryJob): Promise<DeliveryResult> {
    this.jobs.push(job);
    const now = Date.now();
    this.at.push(now);
    return Promise.resolve({ ok: true, status: 200, error: null, body: 'ok', attempts: job.first_attempt, start_time: now, end_time: now, duration_ms: 0, aborted: false });
  }
}

interface Rig {
  store: RedisTaskStore;
  sched: Scheduler;
  delivery: Recorder;
  fired: FiredEvent[];
  /** The scheduler's store errors (its 'storeError' events). */
  storeErrors: Error[];
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A Redis store on a fresh key prefix whose slots `owner` holds; closed after the test. */
async function ownedStore(name: string, owner: string, on: { url?: string; replicaAcks?: { count: number; timeoutMs: number } } = {}): Promise<{ client: RedisClient; store: RedisTaskStore; tokens: Map<number, number> }> {
  const client: RedisClient = await connect(on.url ?? redis.url);
  const prefix = uniquePrefix(name);
  const store = new RedisTaskStore({ client, prefix, slots: SLOTS, log: silentLog, replicaAcks: on.replicaAcks });
  cleanups.push(() => store.close());
  return { client, store, tokens: await acquireAll(client, prefix, SLOTS, owner) };
}

async function rig(on: Parameters<typeof ownedStore>[2] = {}): Promise<Rig> {
  const { store, tokens } = await ownedStore('claims', 'node-a', on);
  // This process owns every slot, each with the epoch its take got (they differ: an epoch is
  // floored at Redis's clock in ms).
  expect(tokens.size).toBe(SLOTS);
  class TakenSlots extends LocalOwnership {
    override tokenFor(slot: number): number | null {
      return super.tokenFor(slot) === null ? null : (tokens.get(slot) ?? null);
    }
  }
  const ownership = new TakenSlots('node-a', SLOTS, 0);
  const delivery = new Recorder();
  const sched = new Scheduler({
    store,
    ownership,
    delivery,
    clock: new SystemClock(),
    log: silentLog,
    nodeId: 'node-a',
    lookaheadMs: 60_000,
    scanIntervalMs: 1000,
    maxSleepMs: 5000,
    misfireThresholdMs: 60_000,
    batchSize: 500,
    maxLoaded: 100_000,
    defaultTimeoutMs: 1000,
    defaultRetry: { max_attempts: 1, backoff_ms: 0, max_backoff_ms: 0 },
    commitAheadMs: 1000,
  });
  const fired: FiredEvent[] = [];
  sched.on('fired', (e) => fired.push(e));
  const storeErrors: Error[] = [];
  sched.on('storeError', (e) => storeErrors.push(e));
  await ownership.start();
  await sched.start();
  cleanups.push(async () => {
    await sched.stop();
    await sched.flush().catch(() => undefined);
  });
  return { store, sched, delivery, fired, storeErrors };
}

async function until(what: string, cond: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + WAIT;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const task = (id: string, at: number, body: Record<string, unknown> = { v: 1 }): Task => {
  const t = oneShot(id, at, Date.now() - 1000);
  return { ...t, slot: slotOf(id, SLOTS), callback: { ...t.callback, body } };
};

async function runOf(store: RedisTaskStore, runId: string): Promise<Run | null> {
  return store.getRun(runId);
}

describe('Scheduler on Redis: fires committed ahead are claimed at their time', () => {
  it('a held fire is delivered once at its time, also when a snapshot read before its commit arrives after it', async () => {
    const r = await rig();
    const at = Date.now() + 2500;
    const t = task('stale-snapshot', at);
    await r.store.create(t);
    r.sched.taskChanged(structuredClone(t)); // (the scheduler updates its snapshot in place)
    const runId = `${t.id}:${at}`;
    await until('the commit ahead of the due time', () => r.fired.some((e) => e.run_id === runId));
    expect(Date.now()).toBeLessThan(at);
    expect(r.delivery.jobs).toEqual([]); // held until its time
    // A task read before that commit (a scan page, a notification in flight) arrives now.
    expect(t).toMatchObject({ state: 'active', next_fire_time: at });
    r.sched.taskChanged(structuredClone(t));
    await until('the run recorded SUCCESS', async () => (await runOf(r.store, runId))?.status === 'SUCCESS');
    expect(r.delivery.jobs.map((j) => j.run_id)).toEqual([runId]);
    expect(r.delivery.jobs[0]!.scheduled_time).toBe(at);
    // claimed shortly before its time, sent at its time: never early
    expect(r.delivery.at[0]!).toBeGreaterThanOrEqual(at);
  });

  it('undone by another node and committed again by the owner: delivered once, with the change', async () => {
    const r = await rig();
    const at = Date.now() + 3000;
    const t = task('undone-elsewhere', at, { v: 'old' });
    await r.store.create(t);
    r.sched.taskChanged(structuredClone(t));
    const runId = `${t.id}:${at}`;
    await until('the commit ahead of the due time', () => r.fired.some((e) => e.run_id === runId));
    // Another node's API: undo, then the change, then the notification reaching the owner.
    expect(await r.store.uncommitHeld(t.id)).toBe(true);
    const cur = (await r.store.get(t.id))!;
    expect(cur).toMatchObject({ state: 'active', next_fire_time: at, run_count: 0 });
    const changed = await r.store.updateTask(t.id, { callback: { ...t.callback, body: { v: 'new' } }, update_time: Date.now() }, { state: cur.state, next_fire_time: cur.next_fire_time });
    expect(changed).not.toBe('conflict');
    r.sched.taskChanged(changed as Task);
    await until('the run recorded SUCCESS', async () => (await runOf(r.store, runId))?.status === 'SUCCESS');
    // give a second (stale) release every chance to show up before counting
    await until('the held fire past its time', () => Date.now() > at + 500);
    expect(r.delivery.jobs.map((j) => j.run_id)).toEqual([runId]);
    expect(JSON.parse(r.delivery.jobs[0]!.body)).toEqual({ v: 'new' });
    expect(r.delivery.at[0]!).toBeGreaterThanOrEqual(at);
    expect(r.fired.filter((e) => e.run_id === runId)).toHaveLength(2); // committed twice: the first was undone
  });

  it('a commit the replicas did not confirm (WAIT fell short) goes out once they do, once, without an outbox re-read', async () => {
    // A primary and one replica; every commit and claim waits for the replica (min_replica_acks 1).
    // This rig has no periodic outbox re-read: before commits were retried as such, the fire
    // stayed in the outbox (committed on the primary, its retry a 'conflict') and this test
    // timed out.
    const primary = await RedisServer.start();
    const replica = await RedisServer.start({ replicaOf: primary.port });
    try {
      await until('the replica online', async () => /^slave0:.*state=online/m.test(await primary.cli('info', 'replication')));
      const r = await rig({ url: primary.url, replicaAcks: { count: 1, timeoutMs: 300 } });
      const at = Date.now() + 3000;
      const t = task('unconfirmed', at);
      expect((await r.store.create(t)).created).toBe(true);
      r.sched.taskChanged(structuredClone(t));
      const runId = `${t.id}:${at}`;
      replica.pause();
      // The commit ahead of the due time runs on the primary, but the replica never confirms it:
      // the scheduler acts on nothing, and retries.
      await until('the commit standing on the primary', async () => (await r.store.get(t.id))?.last_fire_time === at);
      const errorsThen = r.storeErrors.length;
      await until('two more failed commits (retries) and the due time passed', () => r.storeErrors.length >= errorsThen + 2 && Date.now() > at + 200);
      expect(r.storeErrors.some((e) => /replicas required \('cluster.min_replica_acks'\) confirmed it within 300 ms/.test(e.message))).toBe(true);
      expect(r.delivery.jobs).toEqual([]);
      expect(r.fired.filter((e) => e.run_id === runId)).toEqual([]);
      replica.resume();
      await until('the run recorded SUCCESS', async () => (await runOf(r.store, runId))?.status === 'SUCCESS');
      // give a second delivery every chance to show up before counting
      await new Promise((res) => setTimeout(res, 1500));
      expect(r.delivery.jobs.map((j) => j.run_id)).toEqual([runId]);
      expect(r.delivery.at[0]!).toBeGreaterThanOrEqual(at);
      expect(r.fired.filter((e) => e.run_id === runId)).toHaveLength(1);
      expect(await r.store.get(t.id)).toMatchObject({ state: 'completed', run_count: 1, last_fire_time: at });
      expect((await r.store.listRuns(t.id, 10)).map((x) => x.run_id)).toEqual([runId]);
    } finally {
      replica.resume();
      for (const c of cleanups.splice(0).reverse()) await c(); // before their Redis goes
      await replica.stop();
      await primary.stop();
    }
  });

  it('a node taking a slot over leaves runs claimed by a live node to it; given back, or once that node is gone, it recovers them', async () => {
    const { store, tokens } = await ownedStore('claimed', 'b');
    const at = Date.now() + 60_000;
    const t = task('claimed-by-b', at);
    await store.create(t);
    const token = tokens.get(t.slot)!;
    const runId = `${t.id}:${at}`;
    expect(await store.commitFires([{ slot: t.slot, token, task_id: t.id, expected: at, next: null, now: at - 800, run: { run_id: runId, node: 'b', status: 'PENDING', error: null }, ahead: true }])).toEqual(['committed']);
    expect(await store.claimFires([{ slot: t.slot, token, task_id: t.id, run_id: runId }], 'b')).toEqual(['claimed']);
    const live = new Set(['a', 'b']);
    const view = (node: string): ReturnType<typeof recoveryStore> =>
      recoveryStore(store, { nodeId: node, isLive: (n: string) => live.has(n), tokenFor: () => null } as unknown as RedisOwnership);
    const outbox = async (node: string): Promise<string[]> => (await view(node).unfinishedRuns({ slots: null, after: null, limit: 10 })).map((p) => p.run.run_id);
    // b claimed it and is live: a leaves it to b; b itself would redeliver it
    expect(await outbox('a')).toEqual([]);
    expect(await outbox('b')).toEqual([runId]);
    // b is gone: a recovers it
    live.delete('b');
    expect(await outbox('a')).toEqual([runId]);
    // b is live again but gives it back (it lost the slot before sending it): a recovers it
    live.add('b');
    expect(await outbox('a')).toEqual([]);
    await view('b').givenBack!([runId]);
    expect(await outbox('a')).toEqual([runId]);
  });

  it('a read of the outbox does not hand out a run of this node whose outcome was written while the read was under way', async () => {
    const { store, tokens } = await ownedStore('racing', 'a');
    // The outbox read answers only when `gate` opens (a read of many slots under load).
    let gate: Promise<void> | null = null;
    let readDone = false;
    const slow = new Proxy(store, {
      get(target, prop) {
        if (prop === 'unfinishedRuns') {
          return async (q: Parameters<RedisTaskStore['unfinishedRuns']>[0]) => {
            const rows = await target.unfinishedRuns(q);
            readDone = true;
            if (gate) await gate;
            return rows;
          };
        }
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const view = recoveryStore(slow, { nodeId: 'a', isLive: () => true, tokenFor: (slot: number) => tokens.get(slot) ?? null } as unknown as RedisOwnership);
    const at = Date.now() + 60_000;
    const t = task('finished-during-read', at);
    await store.create(t);
    const runId = `${t.id}:${at}`;
    expect(await view.commitFires([{ slot: t.slot, token: tokens.get(t.slot)!, task_id: t.id, expected: at, next: null, now: at, run: { run_id: runId, node: 'a', status: 'PENDING', error: null } }])).toEqual(['committed']);
    let open!: () => void;
    gate = new Promise<void>((r) => (open = r));
    const reading = view.unfinishedRuns({ slots: null, after: null, limit: 10 });
    await until('the outbox read', () => readDone); // it saw the run unfinished
    await view.updateRuns([{ run_id: runId, task_id: t.id, status: 'SUCCESS', attempts: 1, node: 'a', start_time: at, end_time: at + 5, http_status: 200 }]);
    open();
    expect((await reading).map((p) => p.run.run_id)).toEqual([]);
    // a read after it does not show it either (it is finished)
    gate = null;
    expect((await view.unfinishedRuns({ slots: null, after: null, limit: 10 })).map((p) => p.run.run_id)).toEqual([]);
  });
});
