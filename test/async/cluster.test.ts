/**
 * Issue 7 in cluster mode: three real ./xcron_server nodes on one real redis-server (no report
 * secret configured: the nodes share the one created in the store). A real worker receives the
 * callback from the slot's owner and reports through another node; the run closes, the owner lets
 * go of it (no timeout retry), children and alerts follow. Then the owner is killed (SIGKILL) while
 * runs await their reports: a report through a survivor is not lost, and a deadline that expires
 * while the owner is down is enforced by the new owner.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '../../src/redis/index.js';
import { RedisServer, stopAllRedis } from '../helpers/redis.js';
import { waitUntil } from '../helpers/wait.js';
import { uniquePrefix } from '../cluster/harness.js';
import { XNode, dumpLogs, ensureBuilt, owners, slotOfTask, stopAllNodes, until } from '../cluster/procs.js';
import { WAIT, awaiting, create, inflightRuns, runLog, runOf, trigger, waitRun } from './common.js';
import { AsyncWorker, type Job } from './worker.js';

const SLOTS = 64;
const FAR = '0 0 1 1 *';
let redis: RedisServer;
let prefix: string;
let nodes: XNode[];
let worker: AsyncWorker;

beforeAll(async () => {
  ensureBuilt();
  redis = await RedisServer.start({ appendonly: true });
  worker = await AsyncWorker.start();
  prefix = uniquePrefix('async');
  const start = (name: string): Promise<XNode> => XNode.start({ redisUrl: redis.url, prefix, name, slots: SLOTS, leaseMs: 2000 });
  nodes = await Promise.all([start('async-a'), start('async-b'), start('async-c')]);
  await until(
    'all slots owned by the three nodes',
    () => nodes[0]!.cluster(),
    (v) => v.members.length === 3 && v.slots.every((s) => s.owner !== null) && new Set(v.slots.map((s) => s.owner)).size === 3,
    60_000,
  );
}, 180_000);

afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') console.log(`node logs: ${dumpLogs(ctx.task.name)}`);
});

afterAll(async () => {
  await stopAllNodes();
  await worker?.close();
  await stopAllRedis();
});

const byName = (name: string): XNode => nodes.find((n) => n.name === name)!;
const deliveredBy = (j: Job): string => String(j.headers['user-agent'] ?? '').replace(/^xcron-test\//, '');

/** A task whose slot's owner is known; returns the task, its owner and a node that does not own it. */
async function taskWithOwner(body: Record<string, unknown>): Promise<{ id: string; owner: XNode; other: XNode }> {
  const id = await create(nodes[0]!.base, body);
  const map = await owners(nodes[0]!);
  const owner = byName(map.get(slotOfTask(id, SLOTS))!);
  const other = nodes.find((n) => n !== owner && n.running)!;
  return { id, owner, other };
}

describe('async completion in a cluster', () => {
  it("a report through a node that does not own the task's slot closes the run; the owner stops its deadline; the token is accepted by every node", async () => {
    worker.on('/child', { status: 200 });
    const child = await create(nodes[1]!.base, { type: 1, format: FAR, callback: { url: worker.url('/child') } });
    const { id, owner, other } = await taskWithOwner({ type: 1, format: FAR, async_timeout_ms: 2000, retry: { max_attempts: 2, backoff_ms: 100 }, on_success: [child], callback: { url: worker.url('/job') } });
    const runId = await trigger(other.base, id);
    const job = await worker.waitForCallback((j) => j.runId === runId, WAIT, 'the callback');
    expect(deliveredBy(job)).toBe(owner.name);
    expect(job.runId).toBe(job.fireId);
    const running = await waitRun(other.base, id, runId, awaiting, 'awaiting its report');
    expect(await inflightRuns(owner.base)).toBe(1);

    // The token the owner handed out works on every node (a secret shared through the store).
    for (const n of nodes) {
      const r = await worker.appendLog(job, [`via ${n.name}`], n.base);
      expect([r.status, r.body.code], n.name).toEqual([200, 0]);
      const wrong = await worker.appendLog({ runId, token: 'f'.repeat(64) }, ['x'], n.base);
      expect([wrong.status, wrong.body.code], n.name).toEqual([403, 1010]);
    }
    for (const n of nodes) {
      const log = (await runLog(n.base, runId)).body.data;
      expect(log.lines.map((l) => [l.seq, l.line])).toEqual(nodes.map((m, i) => [i + 1, `via ${m.name}`]));
    }

    // Report through the non-owner.
    const rep = await worker.report(job, 'SUCCESS', { message: 'via another node', output: { ok: true } }, other.base);
    expect([rep.status, rep.body.code]).toEqual([200, 0]);
    for (const n of nodes) {
      expect(await runOf(n.base, id, runId), n.name).toMatchObject({ status: 'SUCCESS', message: 'via another node', output: { ok: true }, attempts: 1 });
    }
    expect((await nodes[2]!.call<{ last_status: string }>('GET', `/xcron/queryTask?task_id=${id}`)).body.data.last_status).toBe('SUCCESS');
    // the owner let go of the run (the change feed told it): nothing in flight there
    await waitUntil(() => inflightRuns(owner.base), (n) => n === 0, WAIT, `${owner.name}: the run no longer in flight`);
    // the child fires (delivered by its own slot's owner)
    await worker.waitForCallback((j) => j.taskId === child, WAIT, 'the child callback');
    // a duplicate through a third node is idempotent; a conflict is refused there too
    const third = nodes.find((n) => n !== owner && n !== other)!;
    expect((await worker.report(job, 'SUCCESS', {}, third.base)).body.code).toBe(0);
    expect((await worker.report(job, 'FAIL', {}, third.base)).body.code).toBe(1017);

    // Past the deadline the owner has not retried nor timed the run out.
    await waitUntil(() => Date.now(), (now) => now > running.deadline! + 1500, WAIT, 'the old deadline to pass');
    expect(worker.forTask(id).map((j) => j.attempt)).toEqual([1]);
    for (const n of nodes) expect(n.logs('not reported in time').filter((l) => l.fire_id === runId), n.name).toEqual([]);
    expect(await runOf(owner.base, id, runId)).toMatchObject({ status: 'SUCCESS', attempts: 1 });

    // Deleting the task (through any node) deletes the run and its log in Redis.
    const logKey = new RedisKeys(prefix).runLog(slotOfTask(id, SLOTS), runId);
    expect((await redis.cli('llen', logKey)).trim()).toBe('3');
    expect((await third.call('POST', '/xcron/deleteTask', { task_id: id })).body.code).toBe(0);
    expect((await runLog(other.base, runId)).body.code).toBe(1007);
    expect((await redis.cli('exists', logKey)).trim()).toBe('0');
    expect((await redis.cli('exists', new RedisKeys(prefix).runLogTotals(slotOfTask(id, SLOTS), runId))).trim()).toBe('0');
  });

  it('a FAIL report through a non-owner: FAIL with the message, and the alert', async () => {
    worker.on('/alert', { status: 200 });
    const { id, other } = await taskWithOwner({ type: 1, format: FAR, retry: { max_attempts: 1 }, alert_url: worker.url('/alert'), callback: { url: worker.url('/job') } });
    const runId = await trigger(nodes[0]!.base, id);
    const job = await worker.waitForCallback((j) => j.runId === runId, WAIT, 'the callback');
    await waitRun(other.base, id, runId, awaiting, 'awaiting');
    expect((await worker.report(job, 'FAIL', { message: 'upstream down' }, other.base)).body.code).toBe(0);
    expect(await runOf(nodes[2]!.base, id, runId)).toMatchObject({ status: 'FAIL', error: 'upstream down' });
    const alert = await worker.waitForCallback((j) => j.path === '/alert' && (JSON.parse(j.body) as { run_id: string }).run_id === runId, WAIT, 'the alert');
    expect(JSON.parse(alert.body)).toMatchObject({ event: 'run_failed', task_id: id, error: 'upstream down' });
  });

  it('the owner killed while runs await their reports: a report through a survivor is not lost, and the new owner enforces the other run\'s deadline', async () => {
    worker.on('/doomed', { status: 202 });
    const { id, owner } = await taskWithOwner({ type: 1, format: FAR, async_timeout_ms: 6000, retry: { max_attempts: 1 }, callback: { url: worker.url('/doomed') } });
    const survivor = nodes.find((n) => n !== owner)!;
    const reported = await trigger(survivor.base, id);
    const expiring = await trigger(survivor.base, id);
    const jobR = await worker.waitForCallback((j) => j.runId === reported, WAIT, 'callback 1');
    await worker.waitForCallback((j) => j.runId === expiring, WAIT, 'callback 2');
    await waitRun(survivor.base, id, reported, awaiting, 'run 1 awaiting');
    const e = await waitRun(survivor.base, id, expiring, awaiting, 'run 2 awaiting');

    await owner.kill9();
    // A report while the owner is down, through a survivor.
    const rep = await worker.report(jobR, 'SUCCESS', { message: 'owner was down' }, survivor.base);
    expect([rep.status, rep.body.code]).toEqual([200, 0]);

    // A survivor takes over the slot and enforces the deadline of the unreported run.
    const slot = slotOfTask(id, SLOTS);
    const view = await until('the slot re-owned by a survivor', () => survivor.cluster(), (v) => v.slots[slot]!.owner !== null && v.slots[slot]!.owner !== owner.name, 30_000);
    const newOwner = byName(view.slots[slot]!.owner!);
    const failed = await waitRun(survivor.base, id, expiring, (r) => r.status === 'FAIL', 'the expiring run FAIL', 45_000);
    expect(failed).toMatchObject({ error: 'timeout', attempts: 1 });
    expect(failed.end_time!).toBeGreaterThanOrEqual(e.deadline!);
    await until('the new owner logs the timeout', () => newOwner.logs('async run not reported in time').filter((l) => l.fire_id === expiring), (l) => l.length > 0, WAIT);
    // The reported run stays SUCCESS: the new owner neither redelivered nor timed it out.
    expect(await runOf(survivor.base, id, reported)).toMatchObject({ status: 'SUCCESS', message: 'owner was down', attempts: 1 });
    for (const n of nodes) expect(n.logs('not reported in time').filter((l) => l.fire_id === reported), n.name).toEqual([]);
    expect(worker.forTask(id).map((j) => j.runId).sort()).toEqual([reported, expiring].sort());
    await waitUntil(() => inflightRuns(newOwner.base), (n) => n === 0, WAIT, `${newOwner.name}: nothing in flight`);
  });
});
