/**
 * Redis Stream targets against a real redis-server of the test's own (with a password, which must
 * never show in an API answer or a log line): the entry's fields and body, the entry id in the run,
 * the key override, refusal (a key of the wrong type) as a final failure after the retries, an
 * outage at fire time (retried, then delivered once), and the unknown target name.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisServer, stopAllRedis } from '../helpers/redis.js';
import { waitUntil } from '../helpers/wait.js';
import { WAIT, finalRun, oneShot, startWithConfig, targetSuite, uniq } from './common.js';

targetSuite();
afterAll(async () => {
  await stopAllRedis();
});

const PASSWORD = 'stream-secret-pw-1234';

function toml(port: number, stream: string): string {
  return `[targets.orders]\nkind = "redis_stream"\nurl = "redis://:${PASSWORD}@127.0.0.1:${port}/0"\nstream = "${stream}"\n`;
}

type Entry = [string, string[]];
const fieldsOf = (e: Entry): Record<string, string> => {
  const o: Record<string, string> = {};
  for (let i = 0; i < e[1].length; i += 2) o[e[1][i]!] = e[1][i + 1]!;
  return o;
};

describe('redis_stream target', () => {
  it('XADDs the body and metadata; the run records the entry id; no secret in queryTask or the logs', async () => {
    const redis = await RedisServer.start({ password: PASSWORD });
    const stream = uniq('orders');
    const srv = await startWithConfig(toml(redis.port, stream));
    const task = await srv.client.mustCreate(oneShot('orders'));
    const view = await srv.client.mustQuery(task.task_id);
    expect(view.callback).toEqual({ target: 'orders', body: { order: 42, note: 'é' } });
    const run = await finalRun(srv, task.task_id);
    expect(run.status).toBe('SUCCESS');
    expect(run.attempts).toBe(1);
    const client = new Redis(redis.port, '127.0.0.1', { password: PASSWORD });
    try {
      const entries = (await client.xrange(stream, '-', '+')) as Entry[];
      expect(entries).toHaveLength(1);
      const f = fieldsOf(entries[0]!);
      expect(f.task_id).toBe(task.task_id);
      expect(f.fire_id).toBe(run.run_id);
      expect(f.scheduled_time).toBe(String(run.scheduled_time));
      expect(f.attempt).toBe('1');
      expect(f.report_token).toMatch(/^[A-Za-z0-9_-]{16,}$/);
      expect(f.body).toBe(JSON.stringify({ order: 42, note: 'é' }));
      expect((run as { response_body?: string }).response_body).toBe(entries[0]![0]);
    } finally {
      client.disconnect();
    }
    const text = JSON.stringify(await srv.client.mustQuery(task.task_id)) + srv.lines.join('\n') + srv.stderr;
    expect(text).not.toContain(PASSWORD);
  }, 60_000);

  it("uses the task's key as the stream; a key of the wrong type is retried, then recorded as a final failure", async () => {
    const redis = await RedisServer.start({ password: PASSWORD });
    const srv = await startWithConfig(toml(redis.port, uniq('orders')));
    const other = uniq('other');
    const ok = await srv.client.mustCreate(oneShot('orders', {}, { key: other }));
    expect((await srv.client.mustQuery(ok.task_id)).callback).toMatchObject({ target: 'orders', key: other });
    const wrong = uniq('wrongtype');
    await redis.cli('-a', PASSWORD, 'SET', wrong, 'a string');
    const bad = await srv.client.mustCreate(oneShot('orders', { retry: { max_attempts: 3, backoff_ms: 50, max_backoff_ms: 100 } }, { key: wrong }));
    const good = await finalRun(srv, ok.task_id);
    expect(good.status).toBe('SUCCESS');
    const client = new Redis(redis.port, '127.0.0.1', { password: PASSWORD });
    try {
      expect(await client.xlen(other)).toBe(1);
    } finally {
      client.disconnect();
    }
    const failed = await finalRun(srv, bad.task_id);
    expect(failed.status).toBe('FAIL');
    expect(failed.attempts).toBe(3);
    expect(failed.error).toContain('WRONGTYPE');
    expect(failed.error).not.toContain(PASSWORD);
  }, 60_000);

  it('broker down at fire time, then back: retried, delivered once, nothing lost', async () => {
    const redis = await RedisServer.start({ password: PASSWORD });
    const stream = uniq('outage');
    const srv = await startWithConfig(toml(redis.port, stream));
    // Connect once (so the target's connection exists), then stop Redis before the fires are due.
    const warm = await srv.client.mustCreate(oneShot('orders'));
    expect((await finalRun(srv, warm.task_id)).status).toBe('SUCCESS');
    await redis.stop();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await srv.client.mustCreate(oneShot('orders', { retry: { max_attempts: 50, backoff_ms: 200, max_backoff_ms: 500 }, timeout_ms: 1000 }))).task_id);
    // Wait until every fire failed at least once against the stopped broker.
    await waitUntil(
      async () => Promise.all(ids.map(async (id) => (await srv.client.call<{ runs: { attempts: number; status: string }[] }>('GET', `/xcron/taskRuns?task_id=${id}`)).body.data.runs[0])),
      (runs) => runs.every((r) => r !== undefined && (r.attempts >= 2 || r.status === 'FAIL')),
      WAIT,
      'every fire retried while Redis is down',
    );
    await redis.restart();
    const runs = await Promise.all(ids.map((id) => finalRun(srv, id, 60_000)));
    for (const r of runs) expect(r.status).toBe('SUCCESS');
    const client = new Redis(redis.port, '127.0.0.1', { password: PASSWORD });
    try {
      const entries = (await client.xrange(stream, '-', '+')) as Entry[];
      const fires = entries.map((e) => fieldsOf(e).fire_id);
      for (const r of runs) expect(fires.filter((f) => f === r.run_id)).toHaveLength(1);
    } finally {
      client.disconnect();
    }
  }, 120_000);

  it('refuses an unknown target name with code 1024, and HTTP fields next to a target with 1009', async () => {
    const redis = await RedisServer.start({ password: PASSWORD });
    const srv = await startWithConfig(toml(redis.port, uniq('orders')));
    const r = await srv.client.createTask(oneShot('nope'));
    expect(r.status).toBe(400);
    expect(r.body.code).toBe(1024);
    expect(r.body.message).toContain('"nope"');
    expect(r.body.message).toContain('orders');
    const both = await srv.client.createTask(oneShot('orders', {}, { url: 'http://127.0.0.1:1/x' }));
    expect(both.status).toBe(400);
    expect(both.body.code).toBe(1009);
    const badKey = await srv.client.createTask(oneShot('orders', {}, { key: 'has space' }));
    expect(badKey.body.code).toBe(1009);
    const list = await srv.client.call<{ tasks: unknown[] }>('GET', '/xcron/listTasks');
    expect(list.body.data.tasks ?? []).toHaveLength(0);
  }, 60_000);
});
