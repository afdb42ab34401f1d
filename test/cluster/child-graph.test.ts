/**
 * The child graph (on_success) in a cluster: two real ./xcron_server nodes on one real
 * redis-server. Two updates sent at the same moment through the two nodes, which would close a
 * cycle between them (x -> y through one node, y -> x through the other): exactly one succeeds,
 * the other is refused with code 1009, and the stored graph has no cycle. Repeated for several
 * pairs, so that the two requests really overlap in most rounds.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisServer, stopAllRedis } from '../helpers/redis.js';
import { uniquePrefix } from './harness.js';
import { CallbackReceiver, XNode, dumpLogs, ensureBuilt, stopAllNodes, until } from './procs.js';

const SLOTS = 32;
const ROUNDS = 12;
let redis: RedisServer;
let rec: CallbackReceiver;
let nodes: XNode[];

beforeAll(async () => {
  ensureBuilt();
  redis = await RedisServer.start();
  rec = await CallbackReceiver.start();
  const prefix = uniquePrefix('graph');
  const start = (name: string): Promise<XNode> => XNode.start({ redisUrl: redis.url, prefix, name, slots: SLOTS });
  nodes = await Promise.all([start('graph-a'), start('graph-b')]);
  await until('both nodes are members', () => nodes[0]!.cluster(), (v) => v.members.length === 2);
}, 120_000);

afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') console.log(`node logs: ${dumpLogs(ctx.task.name)}`);
});

afterAll(async () => {
  await stopAllNodes();
  await rec?.close();
  await stopAllRedis();
});

describe('child graph across two nodes', () => {
  it(`two concurrent updates through two nodes that would close a cycle: exactly one wins (${ROUNDS} rounds)`, async () => {
    const [a, b] = [nodes[0]!, nodes[1]!];
    const task = { type: 1, format: '0 0 1 1 *', callback: { url: rec.url('/graph') } };
    for (let round = 0; round < ROUNDS; round++) {
      const { task_id: x } = await a.create({ ...task, name: `graph-x-${round}` });
      const { task_id: y } = await b.create({ ...task, name: `graph-y-${round}` });
      const [rx, ry] = await Promise.all([
        a.call<{ task_id: string }>('POST', '/xcron/updateTask', { task_id: x, on_success: [y] }),
        b.call<{ task_id: string }>('POST', '/xcron/updateTask', { task_id: y, on_success: [x] }),
      ]);
      const answers = [rx, ry].map((r) => ({ status: r.status, code: r.body.code }));
      const wins = answers.filter((r) => r.status === 200 && r.code === 0);
      const refusals = [rx, ry].filter((r) => r.status === 400 && r.body.code === 1009 && /would form a cycle/.test(r.body.message));
      expect({ round, wins: wins.length, refusals: refusals.length, answers }).toMatchObject({ round, wins: 1, refusals: 1 });
      // What is stored agrees: one of the two has the other as its child, never both.
      const [qx, qy] = await Promise.all([
        b.call<{ on_success?: string[] }>('GET', `/xcron/queryTask?task_id=${x}`),
        a.call<{ on_success?: string[] }>('GET', `/xcron/queryTask?task_id=${y}`),
      ]);
      const edges = [qx.body.data.on_success, qy.body.data.on_success].filter((c) => c !== undefined);
      expect({ round, edges }).toEqual({ round, edges: [rx.status === 200 ? [y] : [x]] });
    }
  });
});
