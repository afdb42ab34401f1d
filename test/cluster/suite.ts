/**
 * The set-up of a cluster test file, registered as vitest hooks: before all, a redis-server of its
 * own and the named nodes on it, and every slot owned by its preferred node (the handovers after
 * the joins are over, so the owners the tests read stay the owners); after a failed test, the
 * nodes' logs are written out; after all, the nodes and the redis-server are stopped.
 */
import { afterAll, afterEach, beforeAll } from 'vitest';
import { preferredOwner } from '../../src/cluster/redis.js';
import { RedisServer, stopAllRedis } from '../helpers/redis.js';
import { uniquePrefix } from './harness.js';
import { XNode, dumpLogs, ensureBuilt, stopAllNodes, until } from './procs.js';

export interface ClusterSuiteOptions {
  /** The key prefix's tag and the start of each node's name. */
  tag: string;
  nodes?: number;
  slots: number;
  redis?: Parameters<typeof RedisServer.start>[0];
  /** Extra environment of every node, read when the nodes start. */
  env?: () => Record<string, string>;
  /** Written as every node's ./xcron.toml (the file-only sections, e.g. `[flow.<key>]`). */
  toml?: string;
}

export interface ClusterSuite {
  readonly redis: RedisServer;
  /** The nodes' key prefix (another node may join the cluster with it). */
  readonly prefix: string;
  readonly nodes: readonly XNode[];
}

export function clusterSuite(o: ClusterSuiteOptions): ClusterSuite {
  let redis: RedisServer | undefined;
  const nodes: XNode[] = [];
  const prefix = uniquePrefix(o.tag);

  beforeAll(async () => {
    ensureBuilt();
    redis = await RedisServer.start(o.redis);
    const env = o.env?.() ?? {};
    for (let i = 0; i < (o.nodes ?? 3); i++) nodes.push(await XNode.start({ redisUrl: redis.url, prefix, name: `${o.tag}-${String.fromCharCode(97 + i)}`, slots: o.slots, env, ...(o.toml === undefined ? {} : { toml: o.toml }) }));
    const names = nodes.map((n) => n.name);
    await until(
      'all slots owned by their preferred nodes',
      () => nodes[0]!.cluster(),
      (v) => v.members.length === names.length && v.slots.every((s) => s.owner !== null && s.owner === preferredOwner(s.slot, names)),
    );
  }, 180_000);

  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') console.log(`node logs: ${dumpLogs(ctx.task.name)}`);
  });

  afterAll(async () => {
    await stopAllNodes();
    await stopAllRedis();
  });

  return {
    get redis(): RedisServer {
      if (!redis) throw new Error('the redis-server starts in beforeAll: use it inside a test');
      return redis;
    },
    prefix,
    nodes,
  };
}
