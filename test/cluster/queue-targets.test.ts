/**
 * Queue targets and the results queue in a 3-node cluster (issue 22): real ./xcron_server nodes on
 * a real redis-server (the cluster store), a second redis-server holding the jobs stream and the
 * results stream, and the machine's RabbitMQ (a queue of this test's own on the default exchange).
 *
 * Async one-shot tasks spread over every slot fire to a Redis stream target and to an AMQP target;
 * each fire reaches its broker exactly once (counted by fire id). The test then plays the
 * executor: it reads every message (fire id and report token from the stream fields or the AMQP
 * headers) and writes the report to the results stream, which every node reads through one
 * consumer group. Each report is applied exactly once, by whichever node read it, and the runs end
 * with the reported outcome.
 */
import { connect as amqpConnect, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { preferredOwner } from '../../src/cluster/redis.js';
import { RedisServer, stopAllRedis } from '../helpers/redis.js';
import { AMQP_URL, uniq } from '../targets/common.js';
import { uniquePrefix } from './harness.js';
import { XNode, dumpLogs, ensureBuilt, stopAllNodes, until } from './procs.js';

const SLOTS = 16;
const PER_KIND = 24;
let store: RedisServer;
let brokerRedis: RedisServer;
let broker: Redis;
let amqp: ChannelModel;
let nodes: XNode[];
const jobsStream = uniq('jobs');
const resultsStream = uniq('results');
const jobsQueue = uniq('xcron-cluster-jobs');

beforeAll(async () => {
  ensureBuilt();
  [store, brokerRedis] = await Promise.all([RedisServer.start(), RedisServer.start()]);
  broker = new Redis(brokerRedis.port, '127.0.0.1');
  amqp = await amqpConnect(AMQP_URL);
  await (await amqp.createChannel()).assertQueue(jobsQueue, { durable: false, autoDelete: false });
  const toml = [
    '[targets.rs]', 'kind = "redis_stream"', `url = "${brokerRedis.url}"`, `stream = "${jobsStream}"`, '',
    '[targets.mq]', 'kind = "amqp"', `url = "${AMQP_URL}"`, 'exchange = ""', `routing_key = "${jobsQueue}"`, '',
    '[results]', 'kind = "redis_stream"', `url = "${brokerRedis.url}"`, `stream = "${resultsStream}"`, 'group = "xcron"', 'batch = 5', '',
  ].join('\n');
  const prefix = uniquePrefix('qt');
  nodes = await Promise.all(
    ['a', 'b', 'c'].map((n) => XNode.start({ redisUrl: store.url, prefix, name: `${n}${prefix.slice(-4)}`, slots: SLOTS, toml, env: { XCRON_LOG_LEVEL: 'debug' }, waitReady: false })),
  );
  for (const n of nodes) await n.waitReady(120_000);
  const names = nodes.map((n) => n.name);
  await until('slots balanced', () => nodes[0]!.cluster(), (v) => v.slots.every((s) => s.owner !== null && s.owner === preferredOwner(s.slot, names)), 60_000);
}, 240_000);

afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') console.log(`node logs: ${dumpLogs(ctx.task.name)}`);
});

afterAll(async () => {
  await stopAllNodes();
  if (amqp) {
    const ch = await amqp.createChannel().catch(() => null);
    await ch?.deleteQueue(jobsQueue).catch(() => undefined);
    await amqp.close().catch(() => undefined);
  }
  broker?.disconnect();
  await stopAllRedis();
}, 60_000);

interface Job {
  fire_id: string;
  task_id: string;
  report_token: string;
}

/** The job messages of the jobs stream, one per entry. */
async function streamJobs(): Promise<Job[]> {
  const entries = (await broker.xrange(jobsStream, '-', '+')) as [string, string[]][];
  return entries.map(([, f]) => {
    const m: Record<string, string> = {};
    for (let i = 0; i + 1 < f.length; i += 2) m[f[i]!] = f[i + 1]!;
    return { fire_id: m.fire_id!, task_id: m.task_id!, report_token: m.report_token! };
  });
}

/** Each item's count by key. */
function countBy<T>(items: T[], key: (t: T) => string): Map<string, number> {
  const m = new Map<string, number>();
  for (const i of items) m.set(key(i), (m.get(key(i)) ?? 0) + 1);
  return m;
}

describe('queue targets and the results queue in a 3-node cluster', () => {
  it('each fire is delivered once to its Redis stream or AMQP target; each report through the results stream is applied once, by whichever node reads it', async () => {
    const mqJobs: Job[] = [];
    const ch = await amqp.createChannel();
    await ch.consume(jobsQueue, (m: ConsumeMessage | null) => {
      if (!m) return;
      const h = m.properties.headers ?? {};
      mqJobs.push({ fire_id: String(h['x-xcron-fire-id']), task_id: String(h['x-xcron-task-id']), report_token: String(h['x-xcron-report-token']) });
      ch.ack(m);
    });

    // Tasks created through every node, due together a few seconds from now.
    const due = Math.floor(Date.now() / 1000) + 6;
    const tasks = new Map<string, 'rs' | 'mq'>();
    for (let i = 0; i < 2 * PER_KIND; i++) {
      const target = i % 2 === 0 ? 'rs' : 'mq';
      const body = { type: 2, format: String(due), completion: 'async', async_timeout_ms: 600_000, callback: { target, body: { i } } };
      tasks.set((await nodes[i % 3]!.create(body)).task_id, target);
    }
    const ownerSlots = new Set((await nodes[0]!.cluster()).slots.map((s) => s.owner));
    expect(ownerSlots.size).toBe(3);

    // Every fire reaches its broker, once.
    await until('every fire in the jobs stream', streamJobs, (j) => j.length >= PER_KIND, 60_000, 250);
    await until('every fire in the AMQP queue', () => mqJobs.length, (n) => n >= PER_KIND, 60_000, 250);
    // Late duplicates (a retried publish) would come within the retry backoff: wait a little longer.
    await new Promise((r) => setTimeout(r, 2000));
    const rsJobs = await streamJobs();
    const all = [...rsJobs, ...mqJobs];
    for (const [fire, n] of countBy(all, (j) => j.fire_id)) expect(n, `messages of fire ${fire}`).toBe(1);
    expect(all).toHaveLength(2 * PER_KIND);
    for (const j of rsJobs) expect(tasks.get(j.task_id), `target of ${j.task_id}`).toBe('rs');
    for (const j of mqJobs) expect(tasks.get(j.task_id), `target of ${j.task_id}`).toBe('mq');
    expect(new Set(all.map((j) => j.task_id)).size).toBe(2 * PER_KIND);

    // The executor reports each run through the results stream, one at a time.
    for (const [i, j] of all.entries()) {
      await broker.xadd(resultsStream, '*', 'report', JSON.stringify({ run_id: j.fire_id, token: j.report_token, status: i % 4 === 3 ? 'FAIL' : 'SUCCESS', message: `report ${i}` }));
    }
    for (const [i, j] of all.entries()) {
      const runs = await until(`the reported outcome of ${j.fire_id}`, () => nodes[i % 3]!.runs(j.task_id), (rs) => rs[0]?.status === 'SUCCESS' || rs[0]?.status === 'FAIL', 60_000, 200);
      expect(runs).toHaveLength(1);
      expect(runs[0]!.run_id).toBe(j.fire_id);
      expect(runs[0]!.status).toBe(i % 4 === 3 ? 'FAIL' : 'SUCCESS');
      expect((runs[0] as { message?: string }).message).toBe(`report ${i}`);
    }
    await until('every report acknowledged', async () => Number(((await broker.xpending(resultsStream, 'xcron')) as [number])[0]), (n) => n === 0, 30_000, 200);

    // Applied once each, across the nodes; read by more than one node.
    const applied = nodes.flatMap((n) => n.logs('report applied from the results queue').map((l) => ({ node: n.name, run_id: String(l.run_id), already: l.already === true })));
    const fresh = applied.filter((a) => !a.already);
    expect(fresh).toHaveLength(all.length);
    for (const [run, n] of countBy(fresh, (a) => a.run_id)) expect(n, `applications of ${run}`).toBe(1);
    expect(applied.filter((a) => a.already)).toHaveLength(0);
    const readers = countBy(fresh, (a) => a.node);
    expect(readers.size, `reports applied per node: ${JSON.stringify([...readers])}`).toBeGreaterThanOrEqual(2);
    await ch.close();
  }, 240_000);
});
