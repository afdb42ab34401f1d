/**
 * Cluster mode on a 3-master Redis Cluster (localhost, started by the test) through ioredis's
 * Cluster client ([cluster] redis_cluster = true, several seed nodes in redis_url): two real
 * ./xcron_server nodes share the work, serve each other's tasks, take over after a kill -9.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisClusterServers, stopAllRedis } from '../helpers/redis.js';
import { uniquePrefix } from './harness.js';
import { CallbackReceiver, XNode, checkNoDoubleCommit, dumpLogs, ensureBuilt, owners, slotOfTask, stopAllNodes, until } from './procs.js';

const SLOTS = 32;
const LEASE = 2000;
let rc: RedisClusterServers;
let rec: CallbackReceiver;
let a: XNode;
let b: XNode;

beforeAll(async () => {
  ensureBuilt();
  rc = await RedisClusterServers.start(3);
  rec = await CallbackReceiver.start();
  const prefix = uniquePrefix('rc');
  const start = (name: string): Promise<XNode> => XNode.start({ redisUrl: rc.url, redisCluster: true, prefix, name, slots: SLOTS, leaseMs: LEASE });
  a = await start('rc-a');
  b = await start('rc-b');
  await until('both nodes own a share', () => a.cluster(), (v) => v.slots.every((s) => s.owner !== null) && new Set(v.slots.map((s) => s.owner)).size === 2);
}, 120_000);

afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') console.log(`node logs: ${dumpLogs(ctx.task.name)}`);
});

afterAll(async () => {
  await stopAllNodes();
  await rec?.close();
  await stopAllRedis();
});

describe('cluster mode on a 3-master Redis Cluster', () => {
  it('the slot keys spread over the three masters', async () => {
    // the leases alone live under 32 hash tags: they must not all land on one master
    const counts = await Promise.all(rc.nodes.map(async (n) => Number((await n.cli('dbsize')).trim())));
    expect(counts.filter((c) => c > 0).length).toBe(3);
  });

  it('any node serves any task; a one-shot due in 200 ms through a non-owner is fired by its owner; periodic ticks fire once each', async () => {
    const map = await owners(a);
    const { task_id: periodic } = await a.create({ type: 1, format: '* * * * * *', callback: { url: rec.url('/rc/periodic') } });
    const shots: { id: string; at: number; owner: string }[] = [];
    for (let i = 0; shots.length < 4 && i < 30; i++) {
      const via = i % 2 === 0 ? a : b;
      const at = Date.now() + 200;
      const { task_id } = await via.create({ type: 2, format: String(at), callback: { url: rec.url('/rc/shot') } });
      const owner = map.get(slotOfTask(task_id, SLOTS))!;
      if (owner !== via.name) shots.push({ id: task_id, at, owner });
      const q = await (via === a ? b : a).call<{ task_id: string }>('GET', `/xcron/queryTask?task_id=${task_id}`);
      expect(q.body.data.task_id).toBe(task_id);
    }
    expect(shots).toHaveLength(4);
    await until('the one-shots', () => shots.every((s) => rec.forTask(s.id).length > 0), (ok) => ok, 5_000);
    for (const s of shots) expect(rec.forTask(s.id)[0]!.node).toBe(s.owner);
    await until('five ticks of the periodic task', () => new Set(rec.forTask(periodic).map((c) => c.fireId)).size, (n) => n >= 5, 20_000);
    await checkNoDoubleCommit(b, [periodic, ...shots.map((s) => s.id)], rec);
    expect((await b.call('POST', '/xcron/deleteTask', { task_id: periodic })).body.code).toBe(0);
  });

  it('kill -9 of one node: the other owns every slot and fires its one-shots', async () => {
    const map = await owners(a);
    const shots: string[] = [];
    for (let i = 0; shots.length < 3 && i < 40; i++) {
      const { task_id } = await b.create({ type: 2, format: String(Date.now() + 4000), callback: { url: rec.url('/rc/after') } });
      if (map.get(slotOfTask(task_id, SLOTS)) === a.name) shots.push(task_id);
    }
    expect(shots).toHaveLength(3);
    const killAt = Date.now();
    await a.kill9();
    await until('rc-b owns every slot', () => b.cluster(), (v) => v.slots.every((s) => s.owner === b.name), LEASE + 15_000, 50);
    console.log(`redis cluster: slots re-owned ${Date.now() - killAt} ms after kill -9 (lease ${LEASE} ms)`);
    await until("the dead node's one-shots", () => shots.every((id) => rec.forTask(id).length > 0), (ok) => ok, 20_000);
    for (const id of shots) expect(rec.forTask(id).map((c) => c.node)).toEqual([b.name]);
    await checkNoDoubleCommit(b, shots, rec);
  });
});
