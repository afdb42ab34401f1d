/**
 * Issue 27: a node that resumes after a pause never sends what another node has taken over, and
 * attempt numbers continue across the handover. Real ./xcron_server nodes on a real redis-server,
 * a real receiver recording every callback (fire id, attempt, sending node).
 *
 * - kill -9 of one node, then SIGSTOP of another 3 s later for 8 s (test/cluster/pause-scenario.ts),
 *   twice: no fire id delivered twice except after a copy that left before the kill or the freeze,
 *   no attempt number repeated, nothing lost, no tick committed twice;
 * - SIGSTOP while a callback waits out its retry backoff: the new owner sends the next attempt, the
 *   resumed node never sends its retry;
 * - SIGSTOP while an async run waits for its report deadline: the new owner enforces it, the
 *   resumed node neither retries nor closes it.
 * The stress version (20 runs of the first) is `npm run bench:chaos`.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { preferredOwner } from '../../src/cluster/redis.js';
import { RedisServer, stopAllRedis } from '../helpers/redis.js';
import { uniquePrefix } from './harness.js';
import { LEASE, SLOTS, runKillThenFreeze } from './pause-scenario.js';
import { CallbackReceiver, XNode, dumpLogs, ensureBuilt, owners, slotOfTask, stopAllNodes, until, type Callback } from './procs.js';

let redis: RedisServer;
let rec: CallbackReceiver;

beforeAll(async () => {
  ensureBuilt();
  redis = await RedisServer.start({ appendonly: true, appendfsync: 'always' });
  rec = await CallbackReceiver.start();
}, 120_000);

afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail') console.log(`node logs: ${dumpLogs(ctx.task.name)}`);
  await stopAllNodes();
});

afterAll(async () => {
  await stopAllNodes();
  await rec?.close();
  await stopAllRedis();
});

/** Three fresh nodes with a prefix of their own, each slot with its preferred owner. */
async function cluster(): Promise<XNode[]> {
  const prefix = uniquePrefix('pt');
  const nodes = await Promise.all(['x', 'y', 'z'].map((n) => XNode.start({ redisUrl: redis.url, prefix, name: `${n}${prefix.slice(-4)}`, slots: SLOTS, leaseMs: LEASE, waitReady: false })));
  for (const n of nodes) await n.waitReady(120_000);
  const names = nodes.map((n) => n.name);
  await until('slots balanced', () => nodes[0]!.cluster(), (v) => v.slots.every((s) => s.owner !== null && s.owner === preferredOwner(s.slot, names)), 30_000);
  return nodes;
}

const describeCopies = (cbs: readonly Callback[], t0: number): string => cbs.map((c) => `${c.node} attempt ${c.attempt} at +${c.arrivedAt - t0} ms`).join(', ');

describe('a paused node never sends what another node took over (lease 3 s)', () => {
  for (const rep of [1, 2]) {
    it(`kill -9, then SIGSTOP 3 s later for 8 s (run ${rep} of 2): no duplicate but after a send that left before the fault, attempts continue, nothing lost`, async () => {
      const r = await runKillThenFreeze({ redisUrl: redis.url, rec, log: (l) => console.log(l) });
      console.log(`run ${rep}: ${r.fires} fire ids, ${r.duplicates.length} delivered twice (${r.duplicates.length - r.unexcused.length} after a send that left before the fault), failover ${r.failoverKillMs} / ${r.failoverFreezeMs} ms`);
      expect(r.doubleCommit).toBeNull();
      expect(r.lost).toEqual([]);
      expect(r.unexcused, 'fire ids sent twice by live senders').toEqual([]);
      expect(r.attemptRepeated, 'fire ids whose copies repeat an attempt number').toEqual([]);
    }, 300_000);
  }

  it('SIGSTOP during a retry backoff: the new owner sends attempt 2, the resumed node never sends its retry', async () => {
    const nodes = await cluster();
    const path = '/pause-retry';
    // Attempt 1 is refused with Retry-After 12 s: the owner waits it out, frozen for most of it.
    rec.answer(path, (c) => (c.attempt === 1 ? { status: 503, headers: { 'retry-after': '12' } } : { status: 200 }));
    const due = Date.now() + 2000;
    const { task_id: id } = await nodes[0]!.create({ type: 2, format: String(due), retry: { max_attempts: 5, backoff_ms: 100, max_backoff_ms: 100 }, callback: { url: rec.url(path) } });
    const map = await owners(nodes[0]!);
    const owner = nodes.find((n) => n.name === map.get(slotOfTask(id, SLOTS)))!;
    const others = nodes.filter((n) => n !== owner);
    await until('attempt 1', () => rec.forTask(id), (cbs) => cbs.length === 1, 30_000, 20);
    await until('attempt 1 recorded', () => others[0]!.runs(id), (r) => r[0]?.status === 'RUNNING' && r[0].attempts === 1, 10_000, 50);
    const stopAt = Date.now();
    owner.signal('SIGSTOP');
    await until('attempt 2 from the new owner', () => rec.forTask(id), (cbs) => cbs.some((c) => c.node !== owner.name), LEASE + 20_000);
    await until('the run SUCCESS', () => others[0]!.runs(id), (r) => r[0]?.status === 'SUCCESS', 20_000);
    await new Promise((r) => setTimeout(r, Math.max(0, stopAt + 8000 - Date.now())));
    const contAt = Date.now();
    owner.signal('SIGCONT');
    // Its backoff ends ~4 s later: the retry is dropped (the lease it would go out under lapsed).
    await until(
      'the resumed node dropped its retry (or sent it)',
      () => owner.logs('not sent').length > 0 || rec.forTask(id).some((c) => c.node === owner.name && c.arrivedAt >= contAt),
      (done) => done,
      30_000,
      200,
    );
    const cbs = rec.forTask(id);
    expect(cbs.filter((c) => c.node === owner.name && c.arrivedAt >= contAt), describeCopies(cbs, stopAt)).toEqual([]);
    expect(cbs.map((c) => c.attempt), describeCopies(cbs, stopAt)).toEqual([1, 2]);
    expect((await others[0]!.runs(id))[0]).toMatchObject({ status: 'SUCCESS', attempts: 2 });
  }, 180_000);

  it('SIGSTOP during an async report deadline: the new owner enforces it, the resumed node does not retry it', async () => {
    const nodes = await cluster();
    const path = '/pause-async';
    // Never reported: each attempt times out after 1 s, up to 10 attempts.
    const due = Date.now() + 2000;
    const { task_id: id } = await nodes[0]!.create({ type: 2, format: String(due), completion: 'async', async_timeout_ms: 1000, retry: { max_attempts: 10, backoff_ms: 100, max_backoff_ms: 100 }, callback: { url: rec.url(path) } });
    const map = await owners(nodes[0]!);
    const owner = nodes.find((n) => n.name === map.get(slotOfTask(id, SLOTS)))!;
    await until('attempt 1', () => rec.forTask(id), (cbs) => cbs.length === 1, 30_000, 10);
    // Frozen before its deadline (1 s after the answer): on resume the deadline is due before the
    // lease watchdog, so the expiry runs first.
    const stopAt = Date.now();
    owner.signal('SIGSTOP');
    await until('a retry from the new owner', () => rec.forTask(id), (cbs) => cbs.some((c) => c.node !== owner.name), LEASE + 20_000);
    await new Promise((r) => setTimeout(r, Math.max(0, stopAt + 8000 - Date.now())));
    const contAt = Date.now();
    owner.signal('SIGCONT');
    // It drops the run (its lease lapsed): the new owner goes on. Once
    // the resumed node owns its slot again (rejoined), it enforces the deadline itself, counting on.
    await until('the resumed node owns its slot again', () => nodes[0]!.cluster(), (v) => v.slots.some((s) => s.owner === owner.name), 30_000, 200);
    const seen = rec.forTask(id).length;
    await until('two more attempts', () => rec.forTask(id), (cbs) => cbs.length >= Math.min(10, seen + 2), 30_000, 100);
    const cbs = rec.forTask(id);
    const attempts = cbs.map((c) => c.attempt);
    // No attempt was sent twice (before the fix the resumed node sent attempt 2 again right after SIGCONT).
    expect(attempts, describeCopies(cbs, stopAt)).toEqual(attempts.map((_, i) => i + 1));
    expect(cbs.filter((c) => c.node === owner.name && c.arrivedAt >= contAt && c.arrivedAt < contAt + 1000), describeCopies(cbs, stopAt)).toEqual([]);
  }, 180_000);
});
