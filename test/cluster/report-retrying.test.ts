/**
 * Issue 23 item 6 in a cluster: a report (POST /xcron/reportRun) for a sync run that is between two
 * attempts is refused with 409 / 1018 on every node, not only on the node delivering it. The state
 * is in the store (the run is marked while it waits to retry; reportRun refuses atomically), so a
 * report that reaches another node cannot close the run while its retries go on. Two real
 * ./xcron_server nodes on a real redis-server, a real receiver.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { preferredOwner } from '../../src/cluster/redis.js';
import { RedisKeys, type RedisClient } from '../../src/redis/index.js';
import { call } from '../helpers/http.js';
import { RedisServer, stopAllRedis } from '../helpers/redis.js';
import { Receiver, gate, header } from '../helpers/receiver.js';
import { connect, uniquePrefix } from './harness.js';
import { XNode, dumpLogs, ensureBuilt, owners, slotOfTask, stopAllNodes, until } from './procs.js';

const SLOTS = 16;
let redis: RedisServer;
let client: RedisClient;
let receiver: Receiver;
let nodes: XNode[];
let prefix: string;

beforeAll(async () => {
  ensureBuilt();
  redis = await RedisServer.start({ appendonly: true });
  client = await connect(redis.url);
  receiver = await Receiver.start();
  prefix = uniquePrefix('rr');
  nodes = await Promise.all(['p', 'q'].map((n) => XNode.start({ redisUrl: redis.url, prefix, name: `${n}${prefix.slice(-4)}`, slots: SLOTS, waitReady: false })));
  for (const n of nodes) await n.waitReady(120_000);
  const names = nodes.map((n) => n.name);
  await until('slots balanced', () => nodes[0]!.cluster(), (v) => v.slots.every((s) => s.owner !== null && s.owner === preferredOwner(s.slot, names)), 30_000);
}, 180_000);

afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') console.log(`node logs: ${dumpLogs(ctx.task.name)}`);
});

afterAll(async () => {
  await stopAllNodes();
  client?.disconnect();
  await receiver?.close();
  await stopAllRedis();
});

const report = (via: XNode, runId: string, token: string, status: 'SUCCESS' | 'FAIL') => call<{ status: string }>(via.base, 'POST', '/xcron/reportRun', { json: { run_id: runId, token, status } });
const trigger = async (via: XNode, taskId: string): Promise<string> => {
  const r = await call<{ run_id: string }>(via.base, 'POST', '/xcron/triggerTask', { json: { task_id: taskId } });
  expect(r.body.code, r.text).toBe(0);
  return r.body.data.run_id;
};
/** The run's hash as the store holds it (the test reads Redis itself). */
const runHash = (taskId: string, runId: string): Promise<Record<string, string>> => client.hgetall(new RedisKeys(prefix).run(slotOfTask(taskId, SLOTS), runId));

/** A task through node 0, its owner and the other node. */
async function taskWithOwner(body: Record<string, unknown>): Promise<{ id: string; owner: XNode; other: XNode }> {
  const { task_id: id } = await nodes[0]!.create(body);
  const map = await owners(nodes[0]!);
  const owner = nodes.find((n) => n.name === map.get(slotOfTask(id, SLOTS)))!;
  return { id, owner, other: nodes.find((n) => n !== owner)! };
}

describe('a report for a sync run waiting to retry is refused on every node', () => {
  it('refused (1018) through the node that does not deliver it, and through the one that does; the retries decide the run', async () => {
    // Attempt 1 fails with a retry to come (Retry-After 3 s); attempt 2 is held until the reports
    // have been answered, then succeeds.
    const second = gate();
    receiver.on('/rr-sync', (_r, n) => (n === 1 ? { status: 503, headers: { 'retry-after': '3' }, body: 'busy' } : { status: 200, hold: second.promise }));
    const { id, owner, other } = await taskWithOwner({ type: 1, format: '0 0 1 1 *', callback: { url: receiver.url('/rr-sync') }, retry: { max_attempts: 3, backoff_ms: 100, max_backoff_ms: 100 } });
    const runId = await trigger(other, id);
    const first = await receiver.waitForRequest((r) => r.path === '/rr-sync', 30_000, 'the first attempt');
    expect(header(first, 'user-agent')).toBe(owner.userAgent);
    const token = header(first, 'x-xcron-report-token')!;
    // The store holds the state once the first answer is in (the mark is written with it).
    await until('the run marked as waiting to retry in the store', () => runHash(id, runId), (h) => h.retrying === '1' && h.status === 'RUNNING', 20_000, 20);

    const viaOther = await report(other, runId, token, 'SUCCESS');
    expect(viaOther.status, viaOther.text).toBe(409);
    expect(viaOther.body.code).toBe(1018);
    expect(viaOther.body.message).toContain('sync run');
    const viaOwner = await report(owner, runId, token, 'FAIL');
    expect(viaOwner.status, viaOwner.text).toBe(409);
    expect(viaOwner.body.code).toBe(1018);
    // Nothing changed: still open, attempt 1 counted, no outcome.
    const h = await runHash(id, runId);
    expect(h.status).toBe('RUNNING');
    expect(h.end_time).toBeUndefined();

    // Attempt 2 arrives; while it is in flight a report is still refused (its answer decides).
    await receiver.waitFor((rs) => rs.filter((r) => r.path === '/rr-sync').length >= 2, 30_000, 'the second attempt');
    const during = await report(other, runId, token, 'SUCCESS');
    expect(during.body.code, during.text).toBe(1018);
    second.open();
    await until('the run closed by its second answer', () => other.runs(id), (r) => r[0]?.status === 'SUCCESS', 20_000);
    const run = (await other.runs(id))[0]!;
    expect(run).toMatchObject({ status: 'SUCCESS', attempts: 2, http_status: 200 });
    expect((await runHash(id, runId)).retrying).toBeUndefined();
    // A report after the end: the store's usual answers (same / conflict), not 1018.
    expect((await report(other, runId, token, 'SUCCESS')).body.code).toBe(0);
    expect((await report(other, runId, token, 'FAIL')).status).toBe(409);
    expect((await report(other, runId, token, 'FAIL')).body.code).not.toBe(1018);
  }, 120_000);

  it('refused (1018) through the other node while the first attempt is in flight, before any answer marked the run', async () => {
    // The window the mark alone left open: the store refuses any sync run without a recorded 202,
    // in the script that would close it.
    const first = gate();
    receiver.on('/rr-inflight', (_r, n) => (n === 1 ? { status: 500, body: 'slow failure', hold: first.promise } : { status: 200 }));
    const { id, other } = await taskWithOwner({ type: 1, format: '0 0 1 1 *', callback: { url: receiver.url('/rr-inflight') }, retry: { max_attempts: 3, backoff_ms: 100, max_backoff_ms: 100 } });
    const runId = await trigger(other, id);
    const got = await receiver.waitForRequest((r) => r.path === '/rr-inflight', 30_000, 'the first attempt (held)');
    const r = await report(other, runId, header(got, 'x-xcron-report-token')!, 'SUCCESS');
    expect(r.status, r.text).toBe(409);
    expect(r.body.code).toBe(1018);
    expect((await runHash(id, runId)).end_time).toBeUndefined();
    first.open();
    await until('the run closed by its second answer', () => other.runs(id), (rs) => rs[0]?.status === 'SUCCESS', 20_000);
    expect((await other.runs(id))[0]).toMatchObject({ status: 'SUCCESS', attempts: 2, http_status: 200 });
  }, 120_000);

  it('a report through the other node that overtakes the 202 of a sync task waits for it and closes the run', async () => {
    const answer = gate();
    receiver.on('/rr-202', () => ({ status: 202, hold: answer.promise }));
    const { id, other } = await taskWithOwner({ type: 1, format: '0 0 1 1 *', callback: { url: receiver.url('/rr-202') } });
    const runId = await trigger(other, id);
    const got = await receiver.waitForRequest((r) => r.path === '/rr-202', 30_000, 'the callback (held)');
    // The report is sent first; the 202 is let go right after (the node asks the store again for up to 1 s).
    const pending = report(other, runId, header(got, 'x-xcron-report-token')!, 'SUCCESS');
    answer.open();
    const r = await pending;
    expect(r.status, r.text).toBe(200);
    expect(r.body.data.status).toBe('SUCCESS');
    expect((await other.runs(id))[0]).toMatchObject({ status: 'SUCCESS', http_status: 202 });
  }, 120_000);

  it('an async task between retries still takes a report through any node (it awaits one)', async () => {
    receiver.on('/rr-async', (_r, n) => (n === 1 ? { status: 503, headers: { 'retry-after': '30' }, body: 'busy' } : { status: 202 }));
    const { id, other } = await taskWithOwner({ type: 1, format: '0 0 1 1 *', completion: 'async', async_timeout_ms: 60_000, callback: { url: receiver.url('/rr-async') }, retry: { max_attempts: 3, backoff_ms: 100, max_backoff_ms: 100 } });
    const runId = await trigger(other, id);
    const first = await receiver.waitForRequest((r) => r.path === '/rr-async', 30_000, 'the first attempt');
    await until('the run marked as waiting to retry in the store', () => runHash(id, runId), (h) => h.retrying === '1', 20_000, 20);
    const r = await report(other, runId, header(first, 'x-xcron-report-token')!, 'SUCCESS');
    expect(r.status, r.text).toBe(200);
    expect(r.body.data.status).toBe('SUCCESS');
    expect((await other.runs(id))[0]).toMatchObject({ status: 'SUCCESS' });
  }, 120_000);
});
