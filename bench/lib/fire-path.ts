/**
 * The Redis commands of the cluster fire path, counted without nodes: the Redis store's own calls
 * for F one-shots in each of S slots, as a cluster node makes them for a burst (commit ahead,
 * claim, outcome), with `perSlot` fires per script call. `INFO commandstats` (commands inside
 * scripts included) is reset before the commit and read after the outcome, so the figure is the
 * fire path's alone: no lease renewals, heartbeats, window loads or outbox reads, and no load
 * dependence (the count depends only on the batch sizes).
 */
import { pino } from 'pino';
import { slotOf } from '../../src/cluster/index.js';
import { evalScript, RedisKeys, script, type RedisClient } from '../../src/redis/index.js';
import { RedisTaskStore } from '../../src/store/redis.js';
import type { FireRequest, RunUpdate } from '../../src/store/types.js';
import { fireId, validateCreate, type Task } from '../../src/task/index.js';
import { commandCalls } from './cluster-burst.js';
import type { BenchRedis } from './redis.js';

export interface FirePathResult {
  per_slot: number;
  slots: number;
  fires: number;
  /** Commands per fire, by name, and in all. */
  by_command: Record<string, number>;
  total: number;
}

function oneShot(id: string, at: number, slots: number, now: number): Task {
  const req = validateCreate({ type: 2, format: String(at), callback: { url: 'http://127.0.0.1:9/hook', body: {} } }, now, { defaultTimezone: 'UTC', callbackBodyLimit: 65_536, pastGraceMs: 1000 });
  return { ...req.spec, id, slot: slotOf(id, slots), state: 'active', create_time: now, update_time: now, next_fire_time: req.next_fire_time, last_fire_time: null, last_status: null, run_count: 0 };
}

/** Commands per fire of commit (ahead) + claim + outcome, `perSlot` fires per script call in each of `slots` slots. */
export async function firePathCommands(redis: BenchRedis, slots: number, perSlot: number): Promise<FirePathResult> {
  const client = redis.client as unknown as RedisClient;
  const prefix = `fp${perSlot}-${Math.random().toString(36).slice(2, 8)}`;
  const keys = new RedisKeys(prefix);
  const store = new RedisTaskStore({ client, prefix, slots, log: pino({ level: 'silent' }), ownsClient: false });
  const tokens = new Map<number, number>();
  for (let s = 0; s < slots; s++) {
    const [ok, epoch] = (await evalScript(client, script('acquire'), [keys.slot(s)], ['bench', 600_000])) as [number, number | string];
    if (ok !== 1) throw new Error(`slot ${s} is held`);
    tokens.set(s, Number(epoch));
  }
  const now = Date.now();
  const at = Math.ceil((now + 60_000) / 1000) * 1000;
  // perSlot tasks in every slot
  const bySlot = new Map<number, Task[]>();
  for (let i = 0; [...bySlot.values()].reduce((n, l) => n + Math.min(l.length, perSlot), 0) < slots * perSlot; i++) {
    const t = oneShot(`fp-${perSlot}-${i}`, at, slots, now);
    const l = bySlot.get(t.slot) ?? [];
    if (l.length < perSlot) {
      l.push(t);
      bySlot.set(t.slot, l);
    }
  }
  const tasks = [...bySlot.values()].flat();
  await Promise.all(tasks.map((t) => store.create(t)));
  await redis.client.config('RESETSTAT');
  // One call per step, each split by the store into one script per slot (perSlot fires each).
  const fires: FireRequest[] = tasks.map((t) => ({ slot: t.slot, token: tokens.get(t.slot)!, task_id: t.id, expected: at, next: null, now: at - 800, ahead: true, run: { run_id: fireId(t.id, at), node: 'bench', status: 'PENDING', error: null } }));
  const committed = await store.commitFires(fires);
  if (committed.some((r) => r !== 'committed')) throw new Error(`fire path: commit answered ${committed.find((r) => r !== 'committed')}`);
  const claimed = await store.heldFires!.claimFires(tasks.map((t) => ({ slot: t.slot, token: tokens.get(t.slot)!, task_id: t.id, run_id: fireId(t.id, at) })), 'bench');
  if (claimed.some((r) => r !== 'claimed')) throw new Error('fire path: a claim was refused');
  const outcomes: RunUpdate[] = tasks.map((t) => ({ run_id: fireId(t.id, at), task_id: t.id, status: 'SUCCESS', attempts: 1, node: 'bench', start_time: at + 2, end_time: at + 9, http_status: 200, duration_ms: 7 }));
  await store.updateRuns(outcomes);
  const calls = commandCalls(await redis.client.info('commandstats'));
  const n = tasks.length;
  const by = Object.fromEntries(Object.entries(calls).map(([k, v]) => [k, Math.round((v / n) * 100) / 100]));
  await store.close();
  return { per_slot: perSlot, slots, fires: n, by_command: by, total: Math.round((Object.values(calls).reduce((a, b) => a + b, 0) / n) * 100) / 100 };
}
