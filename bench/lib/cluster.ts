/**
 * xcron cluster nodes for the benches: `node dist/src/main.js` processes in cluster mode on one
 * Redis (XCRON_CLUSTER_* env), each with its own port, temp data dir and node id, and helpers to
 * read GET /xcron/cluster and wait until the slot ownership has settled.
 */
import { request } from 'undici';
import { makeTempDir, removeTempDir, sleep, startServer, type ServerHandle } from './common.js';

export interface ClusterView {
  node: string;
  members: string[];
  slots: { slot: number; owner: string | null; epoch: number | null }[];
}

export interface NodeHandle extends ServerHandle {
  nodeId: string;
}

export interface ClusterOptions {
  redisUrl: string;
  prefix: string;
  /** Bench name (node names are <name>-n1 …, also the CPU-profile file names). */
  name: string;
  slots?: number;
  leaseMs?: number;
  env?: Record<string, string>;
  readyTimeoutMs?: number;
}

export function clusterEnv(o: ClusterOptions, nodeId: string): Record<string, string> {
  return {
    XCRON_NODE_ID: nodeId,
    XCRON_CLUSTER_REDIS_URL: o.redisUrl,
    XCRON_CLUSTER_KEY_PREFIX: o.prefix,
    XCRON_CLUSTER_SLOTS: String(o.slots ?? 256),
    XCRON_CLUSTER_LEASE_MS: String(o.leaseMs ?? 3000),
    ...o.env,
  };
}

/**
 * Settings for cluster nodes that share one machine's cores, as every node does in these benches
 * (3 nodes, Redis and the receiver on 2 cores), and as docs/cluster.md ("Sizing") advises:
 * - delivery on the main thread (`[delivery] worker_thread = false`): the nodes are the parallelism,
 *   and a delivery thread per node only adds thread hand-offs on cores that are already shared;
 * - the per-origin cap split over the nodes (ceil(cap / nodes)), so the receiver sees the same
 *   total concurrency (and connections) as from one standalone node with the cap.
 * Measured on 2 cores (bench:cluster, 3 nodes vs standalone callbacks/s): defaults 0.57-0.62x;
 * main-thread delivery alone 0.69x; the split cap alone 0.62x; both 0.92x.
 * BENCH_CLUSTER_COLOCATED=0 runs the nodes with the default settings instead.
 */
export function colocatedEnv(nodes: number): Record<string, string> {
  if (process.env.BENCH_CLUSTER_COLOCATED === '0') return {};
  const cap = Number(process.env.XCRON_DELIVERY_PER_ORIGIN_CONCURRENCY ?? 256);
  return { XCRON_DELIVERY_WORKER_THREAD: 'false', XCRON_DELIVERY_PER_ORIGIN_CONCURRENCY: String(Math.ceil(cap / nodes)) };
}

/** Starts one cluster node (its data dir is a temp dir removed by `stopNode`). */
export async function startNode(o: ClusterOptions, nodeId: string): Promise<NodeHandle> {
  const dir = makeTempDir(`${o.name}-${nodeId}`);
  const h = await startServer({ name: `${o.name}-${nodeId}`, dataDir: dir, env: clusterEnv(o, nodeId), readyTimeoutMs: o.readyTimeoutMs ?? 120_000 });
  return { ...h, nodeId };
}

export async function stopNode(n: NodeHandle): Promise<void> {
  await n.stop();
  removeTempDir(n.dataDir);
}

/** Starts `count` nodes one after the other (n1, n2, …) and waits until ownership settled. */
export async function startCluster(o: ClusterOptions, count: number): Promise<NodeHandle[]> {
  const nodes: NodeHandle[] = [];
  try {
    for (let i = 1; i <= count; i++) nodes.push(await startNode(o, `n${i}`));
    await waitSettled(nodes, count, 60_000);
    return nodes;
  } catch (e) {
    await Promise.all(nodes.map((n) => stopNode(n).catch(() => undefined)));
    throw e;
  }
}

export async function clusterView(baseUrl: string): Promise<ClusterView> {
  const res = await request(`${baseUrl}/xcron/cluster`, { method: 'GET', headersTimeout: 5000, bodyTimeout: 5000 });
  const body = (await res.body.json()) as { code: number; data: ClusterView };
  if (res.statusCode !== 200 || body.code !== 0) throw new Error(`GET /xcron/cluster: HTTP ${res.statusCode} code ${body.code}`);
  return body.data;
}

/** Slots per owner ('' = unowned). */
export function ownersOf(v: ClusterView): Map<string, number> {
  const m = new Map<string, number>();
  for (const s of v.slots) m.set(s.owner ?? '', (m.get(s.owner ?? '') ?? 0) + 1);
  return m;
}

/**
 * Waits until `members` nodes are live, every slot is owned by one of the live nodes, each node
 * owns at least one slot, and the owner map stayed the same for 1.5 s.
 */
export async function waitSettled(nodes: readonly NodeHandle[], members: number, timeoutMs: number): Promise<ClusterView> {
  const deadline = Date.now() + timeoutMs;
  let stableSince = 0;
  let lastKey = '';
  let last: ClusterView | null = null;
  const ids = new Set(nodes.map((n) => n.nodeId));
  while (Date.now() < deadline) {
    try {
      const v = await clusterView(nodes[0]!.baseUrl);
      last = v;
      const owners = ownersOf(v);
      const ok = v.members.length === members && !owners.has('') && [...owners.keys()].every((k) => ids.has(k)) && [...ids].every((id) => (owners.get(id) ?? 0) > 0);
      const key = v.slots.map((s) => s.owner ?? '').join(',');
      if (ok && key === lastKey) {
        if (Date.now() - stableSince >= 1500) return v;
      } else {
        stableSince = Date.now();
        lastKey = ok ? key : '';
      }
    } catch {
      stableSince = Date.now();
      lastKey = '';
    }
    await sleep(100);
  }
  const desc = last ? `members ${last.members.join(',')}; owners ${JSON.stringify(Object.fromEntries(ownersOf(last)))}` : 'no view';
  throw new Error(`cluster did not settle within ${timeoutMs} ms (${desc})`);
}
