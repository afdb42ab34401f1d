/**
 * `npm run bench:cluster-cost`: the CPU a callback costs in cluster mode, against one standalone
 * node, over the same burst (issue #24 item 5). One redis-server the bench starts (free port, no
 * persistence), one shared receiver.
 *
 *   1. standalone (SQLite): a warm-up, then a burst of N one-shots (default 20,000) due in one second.
 *   2. for each cluster size in BENCH_COST_NODES (default 1,2,3): a fresh cluster on a flushed
 *      Redis, the same warm-up and burst, created round-robin through the nodes.
 *
 * For each burst, from the end of creation to the last callback: the CPU of each node (from /proc),
 * of Redis (from /proc, and from Redis's own INFO cpu), and the Redis commands run (INFO
 * commandstats, commands inside scripts included), all per callback. A node's CPU per callback is
 * its CPU over the callbacks of its slots (the burst's tasks spread evenly over the slots).
 *
 * First, without nodes: the Redis commands of the fire path alone (commit ahead, claim, outcome
 * through the Redis store, one-shots), with 1, 4 and 16 fires per slot script (lib/fire-path.ts):
 * a count that does not depend on the machine's load.
 *
 * Targets: total CPU per callback (nodes + Redis) <= 1.25x standalone and <= 10 Redis commands per
 * callback, for the largest cluster.
 *
 * Env: BENCH_CLUSTER_BURST (20000), BENCH_CLUSTER_WARMUP (10000), BENCH_CLUSTER_LEASE_MS (3000),
 *      BENCH_COST_NODES (1,2,3; 0 = the fire path alone).
 */
import { loadavg } from 'node:os';
import { atMost, envInt, fmt, header, isMain, line, machine, makeTempDir, removeTempDir, round1, round2, runStandalone, serverPool, startServer, writeResult, type BenchResult, type ServerHandle, type TargetCheck } from './lib/common.js';
import { clusterView, colocatedEnv, ownersOf, startCluster, stopNode, type NodeHandle } from './lib/cluster.js';
import { burst, commandsPerCallback, printBurst, warmUp, type BurstResult, type Pool } from './lib/cluster-burst.js';
import { firePathCommands, type FirePathResult } from './lib/fire-path.js';
import { Receiver } from './lib/receiver-client.js';
import { BenchRedis } from './lib/redis.js';

const SLOTS = 256;

interface CostRow {
  label: string;
  nodes: number;
  loadavg: number[];
  burst: BurstResult;
  /** µs of CPU per callback: all nodes, Redis (/proc), both. */
  nodes_us: number;
  redis_us: number;
  total_us: number;
  /** Per node: its CPU over the callbacks of its slots, µs. */
  per_node_us: number[];
  commands_per_callback: number | null;
}

const us = (s: number, n: number): number => round1((s * 1e6) / Math.max(1, n));

function costRow(label: string, nodes: number, b: BurstResult, slotShares: number[]): CostRow {
  const n = b.received_unique;
  return {
    label,
    nodes,
    loadavg: loadavg().map(round2),
    burst: b,
    nodes_us: us(b.cpu_s, n),
    redis_us: us(b.redis_cpu_s, n),
    total_us: us(b.cpu_s + b.redis_cpu_s, n),
    per_node_us: b.cpu_s_per_node.map((c, i) => us(c, n * (slotShares[i] ?? 1))),
    commands_per_callback: commandsPerCallback(b),
  };
}

export async function runClusterCost(): Promise<BenchResult> {
  const N = envInt('BENCH_CLUSTER_BURST', 20_000);
  const W = envInt('BENCH_CLUSTER_WARMUP', 10_000);
  const leaseMs = envInt('BENCH_CLUSTER_LEASE_MS', 3000);
  const sizes = (process.env.BENCH_COST_NODES ?? '1,2,3')
    .split(',')
    .map((s) => Number(s.trim()))
    .filter((x) => Number.isInteger(x) && x >= 1);
  const started = Date.now();
  const m0 = machine();
  header('cluster-cost', `CPU and Redis commands per callback over a ${fmt(N)}-callback burst: standalone vs clusters of ${sizes.join(', ')} nodes`);
  const targets: TargetCheck[] = [];
  const notes: string[] = [];
  const rows: CostRow[] = [];
  const firePath: FirePathResult[] = [];
  let redis: BenchRedis | null = null;
  let receiver: Receiver | null = null;
  let standalone: ServerHandle | null = null;
  let nodes: NodeHandle[] = [];
  let pools: Pool[] = [];
  const sdir = makeTempDir('cost-standalone');
  const closePools = async (): Promise<void> => {
    await Promise.all(pools.map((p) => p.close().catch(() => undefined)));
    pools = [];
  };
  try {
    redis = await BenchRedis.start({ name: 'cluster-cost' });
    receiver = await Receiver.start();
    line('redis-server', `pid ${redis.pid}, port ${redis.port}, no persistence`);

    console.log('  --- the fire path alone (Redis store calls, no nodes): commands per one-shot fire, commit ahead + claim + outcome');
    await firePathCommands(redis, 64, 1); // loads the scripts (a first EVALSHA answers NOSCRIPT), not counted
    for (const perSlot of [1, 4, 16]) {
      const f = await firePathCommands(redis, 64, perSlot);
      firePath.push(f);
      line(`fire path, ${perSlot} per slot script`, `${fmt(f.total, 2)}: ${Object.entries(f.by_command).map(([k, v]) => `${k} ${fmt(v, 2)}`).join(', ')}`);
    }
    await redis.flushAll();
    if (sizes.length === 0) {
      // BENCH_COST_NODES=0: the fire path alone
      const r: BenchResult = { name: 'cluster-cost', started_at: new Date(started).toISOString(), duration_s: round1((Date.now() - started) / 1000), machine: m0, config: { sizes }, figures: { fire_path: firePath }, targets, notes };
      writeResult(r);
      return r;
    }

    console.log(`  --- standalone node (loadavg ${loadavg().map(round2).join(' ')})`);
    standalone = await startServer({ name: 'cost-standalone', dataDir: sdir });
    const sPid = standalone.pid;
    pools = [serverPool(standalone.baseUrl, 64)];
    if (W > 0) await warmUp(pools, receiver, W);
    const sBurst = await burst(pools, () => [sPid], null, receiver, N);
    printBurst('standalone', sBurst);
    rows.push(costRow('standalone', 1, sBurst, [1]));
    await closePools();
    await standalone.stop();
    standalone = null;

    for (const k of sizes) {
      console.log(`  --- ${k}-node cluster (loadavg ${loadavg().map(round2).join(' ')})`);
      await redis.flushAll();
      const env = colocatedEnv(k);
      nodes = await startCluster({ redisUrl: redis.url, prefix: `cc${k}`, name: `cost${k}`, leaseMs, env }, k);
      const view = await clusterView(nodes[0]!.baseUrl);
      const owners = ownersOf(view);
      const shares = nodes.map((n) => (owners.get(n.nodeId) ?? 0) / SLOTS);
      line(`${k} nodes: slots per owner`, JSON.stringify(Object.fromEntries(owners)));
      pools = nodes.map((n) => serverPool(n.baseUrl, Math.ceil(64 / k) + 4));
      if (W > 0) await warmUp(pools, receiver, W);
      const pids = nodes.map((n) => n.pid);
      const b = await burst(pools, () => pids, redis, receiver, N);
      printBurst(`${k} nodes`, b);
      rows.push(costRow(`${k} nodes`, k, b, shares));
      await closePools();
      await Promise.all(nodes.map((n) => stopNode(n)));
      nodes = [];
    }

    const base = rows[0]!;
    console.log('\n  CPU per callback (µs; from the end of creation to the last callback)');
    console.log(`  ${'setup'.padEnd(12)} ${'loadavg'.padEnd(16)} ${'nodes'.padStart(7)} ${'redis'.padStart(7)} ${'total'.padStart(7)} ${'x std'.padStart(6)} ${'cmds/cb'.padStart(8)}  per node (its own callbacks)`);
    for (const r of rows) {
      const ratio = r.total_us / Math.max(1, base.total_us);
      console.log(
        `  ${r.label.padEnd(12)} ${r.loadavg.join(' ').padEnd(16)} ${fmt(r.nodes_us).padStart(7)} ${fmt(r.redis_us).padStart(7)} ${fmt(r.total_us).padStart(7)} ${fmt(ratio, 2).padStart(6)} ${(r.commands_per_callback === null ? '-' : fmt(r.commands_per_callback, 1)).padStart(8)}  ${r.per_node_us.map((x) => fmt(x)).join(' / ')}`,
      );
      if (!r.burst.valid) notes.push(`${r.label}: INVALID burst (creation overran the due time or failed)`);
      if (r.burst.missing > 0 || r.burst.duplicates > 0) notes.push(`${r.label}: ${r.burst.missing} missing, ${r.burst.duplicates} duplicates`);
    }
    const last = rows[rows.length - 1]!;
    if (last !== base) {
      const ratioCheck = atMost(`${last.label} CPU per callback vs standalone`, round2(last.total_us / Math.max(1, base.total_us)), 1.25, 'x');
      const cmdCheck = atMost(`${last.label} Redis commands per callback`, round1(last.commands_per_callback ?? 0), 10, '');
      targets.push(ratioCheck, cmdCheck);
      line(`${last.label} / standalone total CPU per callback`, `${fmt(last.total_us)} / ${fmt(base.total_us)} µs = ${fmt(last.total_us / Math.max(1, base.total_us), 2)}x`, ratioCheck);
      line(`${last.label} Redis commands per callback`, fmt(last.commands_per_callback ?? 0, 1), cmdCheck);
    }
    const r: BenchResult = {
      name: 'cluster-cost',
      started_at: new Date(started).toISOString(),
      duration_s: round1((Date.now() - started) / 1000),
      machine: m0,
      config: { burst: N, warmup: W, lease_ms: leaseMs, sizes, slots: SLOTS },
      figures: { fire_path: firePath, rows, node_env: colocatedEnv(sizes[sizes.length - 1] ?? 1) },
      targets,
      notes,
    };
    writeResult(r);
    return r;
  } finally {
    await closePools();
    if (standalone) await standalone.stop().catch(() => undefined);
    await Promise.all(nodes.map((n) => stopNode(n).catch(() => undefined)));
    if (receiver) await receiver.stop().catch(() => undefined);
    if (redis) await redis.stop().catch(() => undefined);
    removeTempDir(sdir);
  }
}

if (isMain(import.meta.url)) runStandalone(runClusterCost);
