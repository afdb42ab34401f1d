/**
 * `npm run bench:cluster`: xcron's cluster mode on one redis-server the bench starts (free port, no
 * persistence), against one standalone node in the same run, with one shared receiver.
 *
 *   1. standalone (SQLite): createTask req/s (64 clients, 10 s) and a burst of N one-shots (default
 *      20,000) due in the same second: callbacks/s and lateness.
 *   2. 3-node cluster (lease BENCH_CLUSTER_LEASE_MS, default 3,000 ms): createTask req/s with the 64
 *      clients spread round-robin over the 3 nodes; the same burst created round-robin through the 3
 *      nodes (most tasks through a node that does not own their slot).
 *   3. failover: P periodic tasks (`* * * * * *`, default 300) created through all nodes; after a few
 *      seconds one node (n3) is killed with SIGKILL; GET /xcron/cluster on n1 is polled every 50 ms
 *      until every slot is owned again by a live node (failover time = kill -> that moment; target:
 *      lease + 1 s). The ticks are checked over [W0, W1): W0 = the first whole second >= 2 s after
 *      creation, W1 = 8 s after the failover completed: every tick of every task in the window must
 *      arrive (lost ticks), each fire id once (duplicates; after a kill -9 a run the dead node had
 *      delivered but not yet recorded is delivered again by the new owner — at-least-once — so
 *      those are counted separately as "re-deliveries after the kill").
 *
 * Targets: failover <= lease + 1 s; 3 nodes' callbacks/s >= standalone; zero duplicates and zero
 * lost ticks (burst and failover).
 *
 * Env: BENCH_CLUSTER_BURST (20000), BENCH_CLUSTER_PERIODIC (300), BENCH_CLUSTER_LEASE_MS (3000),
 *      BENCH_CLUSTER_CREATE_SECONDS (10), BENCH_CLUSTER_CLIENTS (64), BENCH_CLUSTER_NODES (3),
 *      BENCH_CLUSTER_WARMUP (10000: one-shots delivered before each burst, not measured; 0 = cold).
 */
import { loadavg } from 'node:os';
import {
  atLeast,
  atMost,
  calibrateCreateRate,
  createMany,
  createTask,
  distOf,
  envInt,
  fmt,
  header,
  isMain,
  line,
  machine,
  makeTempDir,
  removeTempDir,
  round1,
  round2,
  runStandalone,
  serverLogSummary,
  serverPool,
  sleep,
  startServer,
  warmUpDueTimes,
  writeResult,
  type BenchResult,
  type Dist,
  type ServerHandle,
  type TargetCheck,
} from './lib/common.js';
import { clusterView, colocatedEnv, ownersOf, startCluster, stopNode, type NodeHandle } from './lib/cluster.js';
import { burst, printBurst, warmUp, type Pool } from './lib/cluster-burst.js';
import { Receiver, analyse } from './lib/receiver-client.js';
import { BenchRedis } from './lib/redis.js';

/** createTask req/s with `clients` loops; client i talks to pool i % pools.length. */
async function createRate(pools: Pool[], clients: number, seconds: number): Promise<{ rps: number; ok: number; errors: number; lat: Dist; per_node: number[] }> {
  const base = Date.now() + 30 * 86_400_000;
  let seq = 0;
  const warm = performance.now() + 1000;
  const end = warm + seconds * 1000;
  const lat: number[] = [];
  let ok = 0;
  let errors = 0;
  const perNode = pools.map(() => 0);
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      const pi = c % pools.length;
      for (;;) {
        const s = performance.now();
        if (s >= end) return;
        const body = JSON.stringify({ type: 2, format: String(base + Math.floor(Math.random() * 365 * 86_400_000)), callback: { url: 'http://127.0.0.1:9/never', body: { i: seq++ } } });
        const r = await createTask(pools[pi]!, body);
        const e = performance.now();
        if (e < warm || e > end) continue;
        if (r.ok) {
          ok++;
          perNode[pi]!++;
          lat.push(e - s);
        } else errors++;
      }
    }),
  );
  return { rps: Math.round(ok / seconds), ok, errors, lat: distOf(lat), per_node: perNode.map((x) => Math.round(x / seconds)) };
}

export async function runCluster(): Promise<BenchResult> {
  const N = envInt('BENCH_CLUSTER_BURST', 20_000);
  const W = envInt('BENCH_CLUSTER_WARMUP', 10_000);
  const P = envInt('BENCH_CLUSTER_PERIODIC', 300);
  const leaseMs = envInt('BENCH_CLUSTER_LEASE_MS', 3000);
  const createSeconds = envInt('BENCH_CLUSTER_CREATE_SECONDS', 10);
  const clients = envInt('BENCH_CLUSTER_CLIENTS', 64);
  const nodesN = Math.max(2, envInt('BENCH_CLUSTER_NODES', 3));
  const nodeEnv = colocatedEnv(nodesN);
  const started = Date.now();
  const m0 = machine();
  const la = (): number[] => loadavg().map(round2);
  const phaseLoad: Record<string, number[]> = {};
  header('cluster', `${nodesN} cluster nodes vs 1 standalone node: createTask, a ${fmt(N)}-callback burst, failover (kill -9, lease ${leaseMs} ms)`);
  const notes: string[] = [];
  const targets: TargetCheck[] = [];
  let redis: BenchRedis | null = null;
  let receiver: Receiver | null = null;
  let standalone: ServerHandle | null = null;
  let nodes: NodeHandle[] = [];
  const pools: Pool[] = [];
  const sdir = makeTempDir('cluster-standalone');
  try {
    redis = await BenchRedis.start({ name: 'cluster' });
    receiver = await Receiver.start();
    line('redis-server', `pid ${redis.pid}, port ${redis.port}, no persistence`);

    // 1. standalone
    phaseLoad.standalone = la();
    console.log(`  --- standalone node (loadavg ${phaseLoad.standalone.join(' ')})`);
    standalone = await startServer({ name: 'cluster-standalone', dataDir: sdir });
    const sp = serverPool(standalone.baseUrl, clients);
    pools.push(sp);
    const sCreate = await createRate([sp], clients, createSeconds);
    line('standalone: createTask req/s', `${fmt(sCreate.rps)} (p99 ${fmt(sCreate.lat.p99, 1)} ms, ${sCreate.errors} errors)`);
    const sPid = standalone.pid;
    const sWarm = W > 0 ? await warmUp([sp], receiver, W) : null;
    if (sWarm) line('standalone: warm-up', `${fmt(sWarm.unique)} / ${fmt(sWarm.expected)} one-shots delivered (not measured); duplicates ${sWarm.duplicates}, missing ${sWarm.missing}`);
    const sBurst = await burst([sp], () => [sPid], null, receiver, N);
    printBurst('standalone', sBurst);
    const sLog = serverLogSummary(standalone.logFile);
    await standalone.stop();
    standalone = null;

    // 2. cluster
    phaseLoad.cluster = la();
    console.log(`  --- ${nodesN}-node cluster (loadavg ${phaseLoad.cluster.join(' ')})`);
    await redis.flushAll();
    nodes = await startCluster({ redisUrl: redis.url, prefix: 'bc', name: 'cluster', leaseMs, env: nodeEnv }, nodesN);
    line('cluster node settings', Object.keys(nodeEnv).length === 0 ? 'defaults (BENCH_CLUSTER_COLOCATED=0)' : `${Object.entries(nodeEnv).map(([k, v]) => `${k}=${v}`).join(' ')} (nodes sharing the cores; see docs/cluster.md, "Sizing")`);
    const view0 = await clusterView(nodes[0]!.baseUrl);
    line('cluster settled', `members ${view0.members.join(', ')}; slots per owner ${JSON.stringify(Object.fromEntries(ownersOf(view0)))}`);
    const cpools = nodes.map((n) => serverPool(n.baseUrl, Math.ceil(clients / nodesN) + 4));
    pools.push(...cpools);
    const cCreate = await createRate(cpools, clients, createSeconds);
    line('cluster: createTask req/s (all nodes)', `${fmt(cCreate.rps)} (per node ${cCreate.per_node.map((x) => fmt(x)).join(' / ')}; p99 ${fmt(cCreate.lat.p99, 1)} ms, ${cCreate.errors} errors)`);
    const cWarm = W > 0 ? await warmUp(cpools, receiver, W) : null;
    if (cWarm) line('cluster: warm-up', `${fmt(cWarm.unique)} / ${fmt(cWarm.expected)} one-shots delivered (not measured); duplicates ${cWarm.duplicates}, missing ${cWarm.missing}`);
    const cBurst = await burst(cpools, () => nodes.map((n) => n.pid), redis, receiver, N);
    printBurst('cluster', cBurst);

    // 3. failover
    phaseLoad.failover = la();
    console.log(`  --- failover (loadavg ${phaseLoad.failover.join(' ')})`);
    await receiver.reset();
    const bodies = Array.from({ length: P }, (_, i) => JSON.stringify({ type: 1, format: '* * * * * *', callback: { url: receiver!.url, body: { i } } }));
    const parts = cpools.map(() => [] as string[]);
    bodies.forEach((b, i) => parts[i % cpools.length]!.push(b));
    const outs = await Promise.all(parts.map((b, i) => createMany(cpools[i]!, b, 16)));
    const taskIds = outs.flatMap((o) => o.results.filter((r) => r.ok && r.task_id).map((r) => r.task_id!));
    const periodicErrors = P - taskIds.length;
    const W0 = Math.ceil((Date.now() + 2000) / 1000) * 1000;
    while (Date.now() < W0 + 4000) await sleep(100);
    const victim = nodes[nodes.length - 1]!;
    const before = await clusterView(nodes[0]!.baseUrl);
    const victimSlots = before.slots.filter((s) => s.owner === victim.nodeId).length;
    const tKill = Date.now();
    process.kill(victim.pid, 'SIGKILL');
    let tOrphan = 0;
    let tFailover = 0;
    let polls = 0;
    while (Date.now() - tKill < 60_000) {
      polls++;
      try {
        const v = await clusterView(nodes[0]!.baseUrl);
        const owners = ownersOf(v);
        if (tOrphan === 0 && (owners.get(victim.nodeId) ?? 0) < victimSlots) tOrphan = Date.now();
        if (!owners.has(victim.nodeId) && !owners.has('')) {
          tFailover = Date.now();
          break;
        }
      } catch {
        /* retry */
      }
      await sleep(50);
    }
    const failoverMs = tFailover > 0 ? tFailover - tKill : NaN;
    const after = await clusterView(nodes[0]!.baseUrl).catch(() => null);
    const foCheck = atMost('failover ms (kill -9 -> all slots owned)', failoverMs, leaseMs + 1000, 'ms');
    targets.push(foCheck);
    line('failover: victim', `${victim.nodeId} (pid ${victim.pid}) owned ${victimSlots} of ${before.slots.length} slots`);
    line('failover: kill -9 -> first slot released', tOrphan > 0 ? `${fmt(tOrphan - tKill)} ms` : 'n/a');
    line('failover: kill -9 -> every slot owned again', `${fmt(failoverMs)} ms (${polls} polls)`, foCheck);
    if (after) line('failover: slots per owner after', JSON.stringify(Object.fromEntries(ownersOf(after))));
    const W1 = (tFailover > 0 ? tFailover : Date.now()) + 8000;
    const W1s = Math.floor(W1 / 1000) * 1000;
    while (Date.now() < W1s + 6000) await sleep(200);
    const expected = new Set<string>();
    for (const id of taskIds) for (let t = W0; t < W1s; t += 1000) expected.add(`${id}:${t}`);
    const frec = await receiver.collect();
    const fa = analyse(frec, expected);
    // Duplicates by scheduled time: a fire scheduled before the kill may have been committed and
    // delivered by the victim without its outcome being recorded (at-least-once: the new owner
    // delivers it again, same fire id). A duplicate of a tick scheduled after the kill would be a
    // tick fired twice.
    const seen = new Set<string>();
    let dupBeforeKill = 0;
    let dupAfterKill = 0;
    for (let i = 0; i < frec.ids.length; i++) {
      const id = frec.ids[i]!;
      if (!expected.has(id)) continue;
      if (!seen.has(id)) {
        seen.add(id);
        continue;
      }
      if (frec.sched[i]! <= tKill) dupBeforeKill++;
      else dupAfterKill++;
    }
    const late = distOf(fa.lateness);
    line('failover: ticks in window', `${fmt(expected.size)} expected (${taskIds.length} tasks x ${(W1s - W0) / 1000} s), ${fmt(fa.unique)} received, ${fmt(fa.missing)} lost, ${fmt(fa.duplicates)} duplicate deliveries`);
    line('failover: duplicates by scheduled time', `${fmt(dupBeforeKill)} of ticks scheduled before the kill (re-deliveries of the victim's unrecorded runs), ${fmt(dupAfterKill)} after it`);
    line('failover: lateness p50 / p99 / max', `${fmt(late.p50)} / ${fmt(late.p99)} / ${fmt(late.max)} ms (the dead node's ticks wait for the failover)`);
    if (periodicErrors > 0) notes.push(`${periodicErrors} periodic tasks could not be created`);

    // Comparison and targets
    const cpsCheck = atLeast(`${nodesN} nodes callbacks/s vs standalone`, cBurst.cps_due_to_last, sBurst.cps_due_to_last, 'callbacks/s (standalone)');
    targets.push(cpsCheck);
    line(`${nodesN} nodes / standalone callbacks/s`, `${fmt(cBurst.cps_due_to_last)} / ${fmt(sBurst.cps_due_to_last)} = ${fmt(cBurst.cps_due_to_last / Math.max(1, sBurst.cps_due_to_last), 2)}x`, cpsCheck);
    line(`${nodesN} nodes / standalone p99 lateness`, `${fmt(cBurst.lateness_ms.p99)} / ${fmt(sBurst.lateness_ms.p99)} ms = ${fmt(cBurst.lateness_ms.p99 / Math.max(1, sBurst.lateness_ms.p99), 2)}x`);
    line(`${nodesN} nodes / standalone createTask req/s`, `${fmt(cCreate.rps)} / ${fmt(sCreate.rps)} = ${fmt(cCreate.rps / Math.max(1, sCreate.rps), 2)}x`);
    const warmDup = (sWarm?.duplicates ?? 0) + (cWarm?.duplicates ?? 0);
    const warmLost = (sWarm?.missing ?? 0) + (cWarm?.missing ?? 0);
    const dupCheck = atMost('duplicates (warm-ups, bursts, failover)', warmDup + sBurst.duplicates + cBurst.duplicates + fa.duplicates, 0, '');
    const lostCheck = atMost('lost (warm-ups, bursts, failover)', warmLost + sBurst.missing + cBurst.missing + fa.missing, 0, '');
    targets.push(dupCheck, lostCheck);
    line('duplicates: warm-ups / standalone / cluster / failover', `${warmDup} / ${sBurst.duplicates} / ${cBurst.duplicates} / ${fa.duplicates}`, dupCheck);
    line('lost: warm-ups / standalone / cluster / failover', `${warmLost} / ${sBurst.missing} / ${cBurst.missing} / ${fa.missing}`, lostCheck);
    for (const [label, b] of [
      ['standalone', sBurst],
      ['cluster', cBurst],
    ] as const) {
      if (!b.valid) notes.push(`${label} burst INVALID (creation overran the due time or failed)`);
    }
    const cLogs = nodes
      .filter((n) => n !== victim)
      .map((n) => ({ node: n.nodeId, ...serverLogSummary(n.logFile) }))
      .filter((l) => l.lines > 0);
    for (const l of cLogs) line(`${l.node} warn/error log lines`, `${l.lines}: ${l.top.map((t) => `${t.count}x ${t.msg}`).join('; ').slice(0, 300)}`);

    const r: BenchResult = {
      name: 'cluster',
      started_at: new Date(started).toISOString(),
      duration_s: round1((Date.now() - started) / 1000),
      machine: m0,
      config: { nodes: nodesN, node_env: nodeEnv, lease_ms: leaseMs, burst: N, warmup: W, periodic: P, clients, create_seconds: createSeconds, slots: 256 },
      figures: {
        standalone: { create: sCreate, warmup: sWarm, burst: sBurst, log_lines: sLog.lines },
        cluster: { create: cCreate, warmup: cWarm, burst: cBurst, slots_per_owner: Object.fromEntries(ownersOf(view0)) },
        failover: {
          victim: victim.nodeId,
          victim_slots: victimSlots,
          kill_to_first_release_ms: tOrphan > 0 ? tOrphan - tKill : null,
          failover_ms: failoverMs,
          window: { from: W0, to: W1s },
          tasks: taskIds.length,
          expected_ticks: expected.size,
          received_unique: fa.unique,
          deliveries: fa.deliveries,
          lost: fa.missing,
          duplicates: fa.duplicates,
          duplicates_sched_before_kill: dupBeforeKill,
          duplicates_sched_after_kill: dupAfterKill,
          outside_window: fa.unexpected,
          lateness_ms: late,
        },
        ratios: {
          cps: round2(cBurst.cps_due_to_last / Math.max(1, sBurst.cps_due_to_last)),
          p99: round2(cBurst.lateness_ms.p99 / Math.max(1, sBurst.lateness_ms.p99)),
          create: round2(cCreate.rps / Math.max(1, sCreate.rps)),
        },
        cluster_log: cLogs,
        loadavg_per_phase: phaseLoad,
      },
      targets,
      notes,
    };
    writeResult(r);
    return r;
  } finally {
    await Promise.all(pools.map((p) => p.close().catch(() => undefined)));
    if (standalone) await standalone.stop().catch(() => undefined);
    await Promise.all(nodes.map((n) => stopNode(n).catch(() => undefined)));
    if (receiver) await receiver.stop().catch(() => undefined);
    if (redis) await redis.stop().catch(() => undefined);
    removeTempDir(sdir);
  }
}

if (isMain(import.meta.url)) runStandalone(runCluster);
