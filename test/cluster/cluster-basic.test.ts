/**
 * A 3-node cluster of real ./xcron_server processes on one real redis-server: GET /xcron/cluster,
 * any node serving any request, a task due in 200 ms created through a node that does not own its
 * slot, a manual fire through a non-owner, a fire committed ahead undone through nodes that do not
 * own it, and a node with another slot count refusing to start.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisServer } from '../helpers/redis.js';
import { uniquePrefix } from './harness.js';
import { clusterSuite } from './suite.js';
import { CallbackReceiver, XNode, owners, slotOfTask, until } from './procs.js';

const SLOTS = 64;
let rec: CallbackReceiver;
// A wide commit-ahead window (5 s; the default is 1 s), so the changes in the commit-ahead test
// surely land between commit and due time. The other tests run with it too.
const cluster = clusterSuite({ tag: 'basic', slots: SLOTS, redis: { appendonly: true }, env: () => ({ XCRON_SCHEDULER_COMMIT_AHEAD_MS: '5000' }) });
beforeAll(async () => {
  rec = await CallbackReceiver.start();
});
afterAll(() => rec?.close());
const nodes = cluster.nodes;

const A = (): XNode => nodes[0]!;
const B = (): XNode => nodes[1]!;
const C = (): XNode => nodes[2]!;

describe('cluster of three nodes on one Redis', () => {
  it('GET /xcron/cluster: every node shows itself, the same members, and every slot with its owner and epoch', async () => {
    const views = await Promise.all(nodes.map((n) => n.cluster()));
    const names = nodes.map((n) => n.name).sort();
    views.forEach((v, i) => {
      expect(v.node).toBe(nodes[i]!.name);
      expect(v.members).toEqual(names);
      expect(v.slots).toHaveLength(SLOTS);
      for (const s of v.slots) {
        expect(names).toContain(s.owner);
        expect(s.epoch).toBeGreaterThanOrEqual(1);
      }
    });
    // every node owns a share
    const count = new Map<string, number>();
    for (const s of views[0]!.slots) count.set(s.owner!, (count.get(s.owner!) ?? 0) + 1);
    for (const n of names) expect(count.get(n)).toBeGreaterThan(0);
    for (const n of nodes) expect((await n.call('GET', '/readyz')).status).toBe(200);
  });

  it('a task created through one node is queried, listed and deleted through the others at once', async () => {
    const body = { type: 1, format: '0 0 1 1 *', name: 'anywhere-task', callback: { url: rec.url('/anywhere'), body: { x: [1, 2] } } };
    const { task_id } = await A().create(body);
    for (const n of [B(), C()]) {
      const q = await n.call<{ task_id: string; format: string; callback: { url: string; body: unknown } }>('GET', `/xcron/queryTask?task_id=${task_id}`);
      expect(q.status).toBe(200);
      expect(q.body.data).toMatchObject({ task_id, format: '0 0 1 1 *', callback: { url: body.callback.url, body: { x: [1, 2] } } });
    }
    const listed = await C().call<{ tasks: { task_id: string }[] }>('GET', '/xcron/listTasks?name=anywhere-');
    expect(listed.body.data.tasks.map((t) => t.task_id)).toEqual([task_id]);
    const del = await B().call('POST', '/xcron/deleteTask', { task_id });
    expect(del.status).toBe(200);
    expect(del.body.code).toBe(0);
    const gone = await A().call('GET', `/xcron/queryTask?task_id=${task_id}`);
    expect(gone.status).toBe(404);
    expect(gone.body.code).toBe(1007);
    expect((await C().call('POST', '/xcron/deleteTask', { task_id })).body.code).toBe(1007);
  });

  it('a one-shot due in 200 ms, created through a node that does not own its slot, is fired by the owner right away', async () => {
    const map = await owners(A());
    const created: { id: string; via: string; at: number; owner: string }[] = [];
    // through each node in turn until three tasks landed in slots another node owns
    for (let i = 0; created.length < 3 && i < 30; i++) {
      const via = nodes[i % 3]!;
      const at = Date.now() + 200;
      const { task_id } = await via.create({ type: 2, format: String(at), callback: { url: rec.url('/soon') } });
      const owner = map.get(slotOfTask(task_id, SLOTS))!;
      if (owner !== via.name) created.push({ id: task_id, via: via.name, at, owner });
    }
    expect(created).toHaveLength(3);
    // The owner's last scan already loaded its window past these tasks; without being told over
    // pub/sub it would find them only at its safety rescan (every 10 scans), which logs that it did.
    await until('the three callbacks', () => created.every((c) => rec.forTask(c.id).length > 0), (ok) => ok, 5_000);
    for (const n of nodes) expect(n.logs('safety rescan loaded tasks')).toEqual([]);
    for (const c of created) {
      const [cb] = rec.forTask(c.id);
      expect(cb!.node).toBe(c.owner);
      expect(cb!.fireId).toBe(`${c.id}:${c.at}`);
      console.log(`created via ${c.via}, owner ${c.owner}: fired ${cb!.arrivedAt - c.at} ms after its time`);
    }
  });

  it('a fire committed ahead of its due time is undone by a pause, an update or a delete through a node that does not own it', async () => {
    const map = await owners(A());
    const due = Date.now() + 8000;
    // Five one-shots; each change below goes through a node other than the task's owner.
    const mk = async (path: string, at = due): Promise<{ id: string; owner: string; other: XNode }> => {
      const { task_id } = await A().create({ type: 2, format: String(at), callback: { url: rec.url(path) } });
      const owner = map.get(slotOfTask(task_id, SLOTS))!;
      return { id: task_id, owner, other: nodes.find((n) => n.name !== owner)! };
    };
    const paused = await mk('/ahead-paused');
    const moved = await mk('/ahead-moved');
    const deleted = await mk('/ahead-deleted');
    const control = await mk('/ahead-control');
    const later = await mk('/ahead-later', due + 500);
    const all = [paused, moved, deleted, control, later];
    // Committed ahead: each has its PENDING run while its time is not yet due.
    await until('the fires to be committed ahead', () => Promise.all(all.map((t) => B().runs(t.id))), (rs) => rs.every((r) => r.length === 1 && r[0]!.status === 'PENDING'), 15_000);
    expect(Date.now()).toBeLessThan(due);
    // Shown on every node as not fired yet.
    for (const n of nodes) {
      const q = await n.call<{ state: string; next_fire_time: number; run_count: number; last_fire_time: number | null }>('GET', `/xcron/queryTask?task_id=${paused.id}`);
      expect(q.body.data).toMatchObject({ state: 'active', next_fire_time: due, run_count: 0, last_fire_time: null });
    }

    expect((await paused.other.call('POST', '/xcron/pauseTask', { task_id: paused.id })).body).toMatchObject({ code: 0, data: { state: 'paused' } });
    const up = await moved.other.call('POST', '/xcron/updateTask', { task_id: moved.id, format: String(due + 3_600_000) });
    expect(up.body).toMatchObject({ code: 0, data: { next_fire_time: due + 3_600_000 } });
    expect((await deleted.other.call('POST', '/xcron/deleteTask', { task_id: deleted.id })).body.code).toBe(0);
    expect(Date.now()).toBeLessThan(due - 100); // the changes landed before the claim (100 ms before the due time)

    // The untouched tasks fire at their time, once, from their owners; by then the changed ones would have too.
    await until('the untouched tasks', () => [control, later].every((t) => rec.forTask(t.id).length === 1), (ok) => ok, 20_000);
    for (const t of [control, later]) expect(rec.forTask(t.id)[0]!.node).toBe(t.owner);
    await until('the control run recorded SUCCESS', () => C().runs(control.id), (rs) => rs.length === 1 && rs[0]!.status === 'SUCCESS', 10_000);
    expect(rec.forTask(paused.id)).toEqual([]);
    expect(rec.forTask(moved.id)).toEqual([]);
    expect(rec.forTask(deleted.id)).toEqual([]);
    expect(await A().runs(paused.id)).toEqual([]);
    expect(await A().runs(moved.id)).toEqual([]);
    const pq = await C().call('GET', `/xcron/queryTask?task_id=${paused.id}`);
    expect(pq.body.data).toMatchObject({ state: 'paused', next_fire_time: due, run_count: 0, last_fire_time: null });
    const mq = await C().call('GET', `/xcron/queryTask?task_id=${moved.id}`);
    expect(mq.body.data).toMatchObject({ state: 'active', next_fire_time: due + 3_600_000, run_count: 0 });

    // Resumed after its time (through yet another node): fires at once, once, with the original fire id.
    expect((await B().call('POST', '/xcron/resumeTask', { task_id: paused.id })).body.code).toBe(0);
    await until('the resumed task', () => rec.forTask(paused.id).length, (n) => n > 0, 10_000);
    await until('the resumed run recorded SUCCESS', () => A().runs(paused.id), (rs) => rs.length === 1 && rs[0]!.status === 'SUCCESS', 10_000);
    const got = rec.forTask(paused.id);
    expect(new Set(got.map((c) => c.fireId))).toEqual(new Set([`${paused.id}:${due}`]));
    expect(got[0]!.node).toBe(paused.owner);
  });

  it('a manual fire (triggerTask) through a non-owner is delivered by the owner', async () => {
    const map = await owners(A());
    const { task_id } = await A().create({ type: 1, format: '0 0 1 1 *', callback: { url: rec.url('/manual') } });
    const owner = map.get(slotOfTask(task_id, SLOTS))!;
    const via = nodes.find((n) => n.name !== owner)!;
    const r = await via.call<{ run_id: string }>('POST', '/xcron/triggerTask', { task_id });
    expect(r.body.code).toBe(0);
    await until('the manual callback', () => rec.forTask(task_id).length, (n) => n > 0, 10_000);
    const [cb] = rec.forTask(task_id);
    expect(cb!.fireId).toBe(r.body.data.run_id);
    expect(cb!.node).toBe(owner);
    const runs = await C().runs(task_id);
    await until('the run recorded SUCCESS', () => C().runs(task_id), (rs) => rs.length === 1 && rs[0]!.status === 'SUCCESS', 10_000);
    expect(runs).toHaveLength(1);
  });

  it('a Redis with a password: the node authenticates with [cluster] redis_password; without it, it does not start', async () => {
    const secured = await RedisServer.start({ password: 'redis-secret-pw' });
    const p = uniquePrefix('auth');
    const ok = await XNode.start({ redisUrl: secured.url, prefix: p, name: 'basic-auth', slots: 8, env: { XCRON_CLUSTER_REDIS_PASSWORD: 'redis-secret-pw' } });
    expect((await ok.cluster()).slots.every((s) => s.owner === 'basic-auth')).toBe(true);
    const { task_id } = await ok.create({ type: 2, format: String(Date.now() + 300), callback: { url: rec.url('/auth') } });
    await until('the callback through the secured Redis', () => rec.forTask(task_id).length, (n) => n === 1, 10_000);
    // a wrong password (here in the URL) is refused: the node waits for Redis and never joins
    const bad = await XNode.start({ redisUrl: `redis://:wrong@127.0.0.1:${secured.port}`, prefix: p, name: 'basic-noauth', slots: 8, waitReady: false, env: { XCRON_CLUSTER_REDIS_PASSWORD: '' } });
    const refused = await until('the wrong password refused', () => bad.logs('waiting for Redis'), (l) => l.length > 0, 15_000);
    expect(String(refused[0]!.err)).toMatch(/WRONGPASS|NOAUTH|invalid/i);
    expect((await ok.cluster()).members).toEqual(['basic-auth']);
    bad.signal('SIGKILL');
    await bad.exited;
  });

  it('a node started with another slot count refuses to start and says why', async () => {
    const n = await XNode.start({ redisUrl: cluster.redis.url, prefix: cluster.prefix, name: 'basic-wrong', slots: SLOTS * 2, waitReady: false });
    await Promise.race([n.exited, new Promise((r) => setTimeout(r, 30_000))]);
    expect(n.exit).toEqual({ code: 2, signal: null });
    expect(n.stderr).toContain(`'cluster.slots' is ${SLOTS * 2}`);
    expect(n.stderr).toContain(`uses ${SLOTS} slots`);
    // the running cluster is untouched
    expect((await A().cluster()).members).toHaveLength(3);
  });
});
