/**
 * The burst of bench:cluster and bench:cluster-cost: N one-shots due in one second, created
 * round-robin over the nodes' pools, with the CPU each node (and Redis) used and the Redis commands
 * run, per callback, from the end of creation to the last callback (fires are committed up to
 * commit_ahead_ms before their due time, so the window starts before that).
 */
import { calibrateCreateRate, createMany, distOf, fmt, line, sleep, warmUpDueTimes, type Dist, type serverPool } from './common.js';
import { GroupMeter } from './procs.js';
import { analyse, type Receiver } from './receiver-client.js';
import type { BenchRedis } from './redis.js';

export type Pool = ReturnType<typeof serverPool>;

export interface BurstResult {
  valid: boolean;
  created: number;
  create_ms: number;
  create_errors: number;
  received_unique: number;
  deliveries: number;
  duplicates: number;
  missing: number;
  cps_due_to_last: number;
  cps_first_to_last: number;
  lateness_ms: Dist;
  /** CPU seconds of all nodes, from the end of creation to the last callback. */
  cpu_s: number;
  /** The same per node (in the order of the pids given). */
  cpu_s_per_node: number[];
  /** CPU seconds of redis-server over the same window, from /proc. */
  redis_cpu_s: number;
  /** The same from Redis's own `INFO cpu` (used_cpu_sys + used_cpu_user), null without Redis. */
  redis_info_cpu_s: number | null;
  first_after_due_ms: number;
  /** Redis commands from the end of creation to the last callback, per callback (cluster only). */
  redis_calls_per_callback: Record<string, number> | null;
}

/**
 * Before a burst: `n` one-shots due over 2 s once created (ten groups, 200 ms apart), created
 * round-robin over the pools and delivered through the receiver, not measured. Both the standalone
 * node and the cluster's nodes meet the burst with their code compiled and their connections to
 * the receiver open, as running services would (as in bench:peer). BENCH_CLUSTER_WARMUP=0: cold.
 */
export async function warmUp(pools: Pool[], receiver: Receiver, n: number): Promise<{ expected: number; unique: number; duplicates: number; missing: number }> {
  await receiver.reset();
  const due = warmUpDueTimes(n);
  const t0 = due[0] ?? Date.now();
  const per = Math.max(16, Math.ceil(64 / pools.length));
  const parts = pools.map(() => [] as { body: string; at: number }[]);
  for (let i = 0; i < n; i++) {
    const at = due[i]!;
    parts[i % pools.length]!.push({ body: JSON.stringify({ type: 2, format: String(at), callback: { url: receiver.url, body: { warm: i } } }), at });
  }
  const outs = await Promise.all(parts.map((p, i) => createMany(pools[i]!, p.map((x) => x.body), per)));
  const expected = new Set<string>();
  outs.forEach((o, i) => o.results.forEach((r, j) => r.ok && r.task_id && expected.add(`${r.task_id}:${parts[i]![j]!.at}`)));
  await receiver.waitFor(expected.size, t0 + 60_000, 1000);
  const a = analyse(await receiver.collect(), expected);
  await receiver.reset();
  return { expected: expected.size, unique: a.unique, duplicates: a.duplicates, missing: a.missing };
}

/** Redis's own CPU seconds so far (INFO cpu: used_cpu_sys + used_cpu_user). */
async function redisInfoCpu(redis: BenchRedis): Promise<number> {
  const c = await redis.info('cpu');
  return Number(c.used_cpu_sys ?? 0) + Number(c.used_cpu_user ?? 0);
}

/** How far before its due time creation must end for a valid run: commit-ahead (1 s) + 500 ms. */
const MIN_LEAD_MS = 1500;

/** N one-shots due at one second, created round-robin over the pools (pids: the nodes', in pool order). */
export async function burst(pools: Pool[], pids: () => number[], redis: BenchRedis | null, receiver: Receiver, n: number): Promise<BurstResult> {
  const per = Math.max(16, Math.ceil(64 / pools.length));
  const rates = await Promise.all(pools.map((p) => calibrateCreateRate(p, receiver.url, Math.ceil(1000 / pools.length), per)));
  const rate = rates.reduce((a, b) => a + b, 0);
  const leadMs = Math.min(300_000, Math.max(6000, Math.ceil((n / rate) * 1500) + 3000));
  const dueSec = Math.ceil((Date.now() + leadMs) / 1000);
  const dueMs = dueSec * 1000;
  line('  createTask calibration', `${fmt(rate)} req/s -> due ${fmt(leadMs / 1000, 1)} s ahead`);
  await receiver.reset();
  const parts = pools.map(() => [] as string[]);
  for (let i = 0; i < n; i++) parts[i % pools.length]!.push(JSON.stringify({ type: 2, format: String(dueSec), callback: { url: receiver.url, body: { i } } }));
  const t0 = performance.now();
  const outs = await Promise.all(parts.map((b, i) => createMany(pools[i]!, b, per)));
  const createMs = performance.now() - t0;
  const createdAt = Date.now();
  const expected = new Set<string>();
  let errors = 0;
  for (const o of outs) {
    for (const r of o.results) {
      if (r.ok && r.task_id) expected.add(`${r.task_id}:${dueMs}`);
      else errors++;
    }
  }
  const valid = createdAt <= dueMs - MIN_LEAD_MS && errors === 0;
  // Fires are committed up to commit_ahead_ms before their due time: measure from here.
  const meters = pids().map((pid) => new GroupMeter(`node ${pid}`, () => [pid]));
  const rmeter = new GroupMeter('redis', () => (redis ? [redis.pid] : []));
  if (redis) await redis.client.config('RESETSTAT');
  const rcpu0 = redis ? await redisInfoCpu(redis) : 0;
  for (const m of meters) m.start();
  rmeter.start();
  await receiver.waitFor(expected.size, dueMs + 120_000, 2000);
  const perNode = meters.map((m) => m.stop().cpu_s);
  const rm = rmeter.stop();
  const rcpu = redis ? (await redisInfoCpu(redis)) - rcpu0 : null;
  const a = analyse(await receiver.collect(), expected);
  const calls = redis ? commandCalls(await redis.client.info('commandstats')) : null;
  const perCallback = (v: number): number => Math.round((v / Math.max(1, a.unique)) * 100) / 100;
  return {
    valid,
    created: expected.size,
    create_ms: Math.round(createMs),
    create_errors: errors,
    received_unique: a.unique,
    deliveries: a.deliveries,
    duplicates: a.duplicates,
    missing: a.missing,
    cps_due_to_last: Math.round((a.unique / Math.max(1, a.lastArrival - dueMs)) * 1000),
    cps_first_to_last: Math.round(((a.unique - 1) / Math.max(1, a.lastArrival - a.firstArrival)) * 1000),
    lateness_ms: distOf(a.lateness),
    cpu_s: Math.round(perNode.reduce((x, y) => x + y, 0) * 100) / 100,
    cpu_s_per_node: perNode,
    redis_cpu_s: rm.cpu_s,
    redis_info_cpu_s: rcpu === null ? null : Math.round(rcpu * 100) / 100,
    first_after_due_ms: a.firstArrival - dueMs,
    redis_calls_per_callback: calls ? Object.fromEntries(Object.entries(calls).map(([k, v]) => [k, perCallback(v)])) : null,
  };
}

/** `INFO commandstats` → calls per command (those made inside scripts included), most first. */
export function commandCalls(info: string): Record<string, number> {
  const out: [string, number][] = [];
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out.push([m[1]!, Number(m[2])]);
  return Object.fromEntries(out.filter(([k]) => k !== 'info' && k !== 'config|resetstat').sort((x, y) => y[1] - x[1]));
}

/** Total Redis commands per callback (null without Redis). */
export const commandsPerCallback = (b: BurstResult): number | null => (b.redis_calls_per_callback ? Object.values(b.redis_calls_per_callback).reduce((x, v) => x + v, 0) : null);

export function printBurst(label: string, b: BurstResult): void {
  if (!b.valid) console.log(`  !! ${label}: INVALID run (creation overran the due time or failed: ${b.create_errors} errors)`);
  line(`${label}: received`, `${fmt(b.received_unique)} / ${fmt(b.created)} (${fmt(b.deliveries)} deliveries; created in ${fmt(b.create_ms)} ms)`);
  line(`${label}: callbacks/s due->last (first->last)`, `${fmt(b.cps_due_to_last)} (${fmt(b.cps_first_to_last)})`);
  line(`${label}: lateness p50 / p99 / max`, `${fmt(b.lateness_ms.p50)} / ${fmt(b.lateness_ms.p99)} / ${fmt(b.lateness_ms.max)} ms`);
  line(`${label}: duplicates / missing`, `${fmt(b.duplicates)} / ${fmt(b.missing)}`);
  const redisCpu = b.redis_info_cpu_s === null ? `${fmt(b.redis_cpu_s, 2)} s` : `${fmt(b.redis_cpu_s, 2)} s (INFO cpu ${fmt(b.redis_info_cpu_s, 2)} s)`;
  line(`${label}: CPU nodes / redis`, `${fmt(b.cpu_s, 2)} s${b.cpu_s_per_node.length > 1 ? ` (${b.cpu_s_per_node.map((c) => fmt(c, 2)).join(' + ')})` : ''} / ${redisCpu}`);
  const total = commandsPerCallback(b);
  if (b.redis_calls_per_callback && total !== null) {
    const c = Object.entries(b.redis_calls_per_callback).filter(([, v]) => v >= 0.01);
    line(`${label}: redis commands per callback`, `${fmt(total, 1)}: ${c.map(([k, v]) => `${k} ${fmt(v, 2)}`).join(', ')}`);
  }
}
