/**
 * A 3-node cluster of real ./xcron_server processes on one real redis-server: GET /xcron/cluster,
 * any node serving any request, a task due in 200 ms created through a node that does not own its
 * slot, a manual fire through a non-owner, and a node with another slot count refusing to start.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisServer, stopAllRedis } from '../helpers/redis.js';
import { uniquePrefix } from './harness.js';
import { CallbackReceiver, XNode, dumpLogs, ensureBuilt, owners, slotOfTask, stopAllNodes, until } from './procs.js';

const SLOTS = 64;
let redis: RedisServer;
let rec: CallbackReceiver;
let prefix: string;
let nodes: XNode[];

beforeAll(async () => {
  ensureBuilt();
  redis = await RedisServer.start({ appendonly: true });
  rec = await CallbackReceiver.start();
  prefix = uniquePrefix('basic');
  const start = (name: string): Promise<XNode> => XNode.start({ redisUrl: redis.url, prefix, name, slots: SLOTS });
  nodes = [await start('basic-a'), await start('basic-b'), await start('basic-c')];
  // every slot owned, spread over the three
  await until(
    'all slots owned by the three nodes',
    () => nodes[0]!.cluster(),
    (v) => v.members.length === 3 && v.slots.every((s) => s.owner !== null) && new Set(v.slots.map((s) => s.owner)).size === 3,
  );
}, 120_000);

afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') console.log(`node logs: ${dumpLogs(ctx.task.name)}`);
});

afterAll(async () => {
  await stopAllNodes();
  await rec?.close();
  await stopAllRedis();
});

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
    const n = await XNode.start({ redisUrl: redis.url, prefix, name: 'basic-wrong', slots: SLOTS * 2, waitReady: false });
    await Promise.race([n.exited, new Promise((r) => setTimeout(r, 30_000))]);
    expect(n.exit).toEqual({ code: 2, signal: null });
    expect(n.stderr).toContain(`'cluster.slots' is ${SLOTS * 2}`);
    expect(n.stderr).toContain(`uses ${SLOTS} slots`);
    // the running cluster is untouched
    expect((await A().cluster()).members).toHaveLength(3);
  });
});
