/**
 * Results through the queue: an async task's message goes out through a target, the test plays the
 * executor (reads the message, takes its fire id and report token) and writes the report to the
 * results queue; xcron applies it like POST /xcron/reportRun. Redis Streams (a consumer group,
 * XACK after recording) with a crash at each point between reading and acknowledging (the real
 * server killed with SIGKILL by its test hook, then restarted: the report is applied exactly once),
 * and an AMQP queue (manual acknowledgement after recording).
 */
import Database from 'better-sqlite3';
import { connect, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisServer, stopAllRedis } from '../helpers/redis.js';
import type { XcronServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';
import { AMQP_URL, WAIT, finalRun, oneShot, runningRun, startWithConfig, targetSuite, uniq } from './common.js';

targetSuite();
afterAll(async () => {
  await stopAllRedis();
});

function redisToml(port: number, jobs: string, results: string): string {
  return [
    '[targets.jobs]', 'kind = "redis_stream"', `url = "redis://127.0.0.1:${port}"`, `stream = "${jobs}"`, '',
    '[results]', 'kind = "redis_stream"', `url = "redis://127.0.0.1:${port}"`, `stream = "${results}"`, 'group = "xcron"', '',
  ].join('\n');
}

const asyncTask = (target: string): Record<string, unknown> => oneShot(target, { completion: 'async', async_timeout_ms: 600_000 });

/** The executor's side: waits for the job message of `taskId` and returns its fire id and token. */
async function takeJob(client: Redis, stream: string, taskId: string): Promise<{ fire_id: string; report_token: string }> {
  const entry = await waitUntil(
    async () => ((await client.xrange(stream, '-', '+')) as [string, string[]][]).find((e) => e[1].includes(taskId)),
    (e) => e !== undefined,
    WAIT,
    `the job message of ${taskId}`,
  );
  const f: Record<string, string> = {};
  for (let i = 0; i < entry![1].length; i += 2) f[entry![1][i]!] = entry![1][i + 1]!;
  return { fire_id: f.fire_id!, report_token: f.report_token! };
}

function dbRun(srv: XcronServer, runId: string): { status: string; end_time: number | null; message: string | null } {
  const db = new Database(srv.dbFile, { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT status, end_time, message FROM runs WHERE run_id = ?').get(runId) as { status: string; end_time: number | null; message: string | null };
  } finally {
    db.close();
  }
}

async function pendingCount(client: Redis, stream: string): Promise<number> {
  const p = (await client.xpending(stream, 'xcron')) as [number, ...unknown[]];
  return Number(p[0]);
}

describe('results through a Redis stream', () => {
  it('applies a report written to the results stream and acknowledges it; bad reports are dropped, not retried forever', async () => {
    const redis = await RedisServer.start();
    const jobs = uniq('jobs');
    const results = uniq('results');
    const srv = await startWithConfig(redisToml(redis.port, jobs, results));
    const client = new Redis(redis.port, '127.0.0.1');
    try {
      const task = await srv.client.mustCreate(asyncTask('jobs'));
      const job = await takeJob(client, jobs, task.task_id);
      await runningRun(srv, task.task_id);
      await client.xadd(results, '*', 'report', JSON.stringify({ run_id: job.fire_id, token: 'wrong-token-wrong-token', status: 'FAIL' }));
      await client.xadd(results, '*', 'report', 'not json');
      await client.xadd(results, '*', 'report', JSON.stringify({ run_id: job.fire_id, token: job.report_token, status: 'SUCCESS', message: 'done', output: { rows: 3 } }));
      const run = await finalRun(srv, task.task_id);
      expect(run.status).toBe('SUCCESS');
      expect(run.message).toBe('done');
      expect(run.output).toEqual({ rows: 3 });
      await waitUntil(() => pendingCount(client, results), (n) => n === 0, WAIT, 'every entry acknowledged');
      expect(srv.lines.some((l) => l.includes('report from the results queue refused'))).toBe(true);
    } finally {
      client.disconnect();
    }
  }, 90_000);

  for (const point of ['before_record', 'before_ack'] as const) {
    it(`a crash ${point.replace('_', ' ')} neither loses the report nor applies it twice`, async () => {
      const redis = await RedisServer.start();
      const jobs = uniq('jobs');
      const results = uniq('results');
      const srv = await startWithConfig(redisToml(redis.port, jobs, results), { XCRONTEST_RESULTS_CRASH: point, XCRON_LOG_LEVEL: 'debug' });
      const client = new Redis(redis.port, '127.0.0.1');
      try {
        const task = await srv.client.mustCreate(asyncTask('jobs'));
        const job = await takeJob(client, jobs, task.task_id);
        await runningRun(srv, task.task_id);
        await client.xadd(results, '*', 'report', JSON.stringify({ run_id: job.fire_id, token: job.report_token, status: 'SUCCESS', message: 'done once' }));
        const exit = await srv.exited;
        expect(exit.signal).toBe('SIGKILL');
        // Read, not acknowledged: still pending in the group.
        expect(await pendingCount(client, results)).toBe(1);
        const before = dbRun(srv, job.fire_id);
        expect(before.status).toBe(point === 'before_record' ? 'RUNNING' : 'SUCCESS');
        const again = await srv.restart({ env: { XCRONTEST_RESULTS_CRASH: '' } });
        const run = await finalRun(again, task.task_id);
        expect(run.status).toBe('SUCCESS');
        expect(run.message).toBe('done once');
        await waitUntil(() => pendingCount(client, results), (n) => n === 0, WAIT, 'the report acknowledged after the restart');
        // The log line may reach the captured output after the run reads SUCCESS: wait for it.
        const appliedLines = (): string[] => again.lines.filter((l) => l.includes('report applied from the results queue'));
        await waitUntil(appliedLines, (a) => a.length >= 1, WAIT, 'the report applied after the restart');
        const applied = appliedLines();
        expect(applied).toHaveLength(1);
        // Recorded before the crash: the second reading changed nothing (same end time, "already").
        if (point === 'before_ack') {
          expect(applied[0]).toContain('"already":true');
          expect(dbRun(again, job.fire_id).end_time).toBe(before.end_time);
        } else expect(applied[0]).toContain('"already":false');
      } finally {
        client.disconnect();
      }
    }, 120_000);
  }
});

describe('results through an AMQP queue', () => {
  it('applies a report published to the results queue (manual ack after recording)', async () => {
    const queue = uniq('xcron-test-results');
    const jobsQueue = uniq('xcron-test-jobs');
    const conn: ChannelModel = await connect(AMQP_URL);
    try {
      const ch = await conn.createChannel();
      await ch.assertQueue(jobsQueue, { durable: false, autoDelete: false });
      const srv = await startWithConfig(
        ['[targets.jobs]', 'kind = "amqp"', `url = "${AMQP_URL}"`, 'exchange = ""', `routing_key = "${jobsQueue}"`, '', '[results]', 'kind = "amqp"', `url = "${AMQP_URL}"`, `queue = "${queue}"`, ''].join('\n'),
      );
      const task = await srv.client.mustCreate(asyncTask('jobs'));
      const got: ConsumeMessage[] = [];
      await ch.consume(jobsQueue, (m) => {
        if (m) {
          got.push(m);
          ch.ack(m);
        }
      });
      await waitUntil(() => got.length, (n) => n > 0, WAIT, 'the job message');
      const h = got[0]!.properties.headers!;
      await runningRun(srv, task.task_id);
      ch.sendToQueue(queue, Buffer.from(JSON.stringify({ run_id: h['x-xcron-fire-id'], token: h['x-xcron-report-token'], status: 'FAIL', message: 'disk full' })), { persistent: true });
      const run = await finalRun(srv, task.task_id);
      expect(run.status).toBe('FAIL');
      expect(run.message).toBe('disk full');
      await waitUntil(async () => (await ch.checkQueue(queue)).messageCount, (n) => n === 0, WAIT, 'the results queue drained');
      await ch.deleteQueue(jobsQueue);
      await srv.stop();
      await ch.deleteQueue(queue);
    } finally {
      await conn.close().catch(() => undefined);
    }
  }, 90_000);
});
