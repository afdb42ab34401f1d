/**
 * AMQP targets against the machine's RabbitMQ (127.0.0.1:5672, guest/guest) with exchange and
 * queue names of this test run's own: publish and consume with the headers checked, the publisher
 * confirm as the run's outcome, and refusals (unroutable with the mandatory flag, an unknown
 * exchange) recorded as final failures after the retries.
 */
import { connect, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/wait.js';
import { AMQP_URL, WAIT, finalRun, oneShot, startWithConfig, targetSuite, uniq } from './common.js';

targetSuite();

let conn: ChannelModel;
const exchange = uniq('xcron-test-ex');
const queue = uniq('xcron-test-q');
const received: ConsumeMessage[] = [];

beforeAll(async () => {
  conn = await connect(AMQP_URL);
  const ch = await conn.createChannel();
  await ch.assertExchange(exchange, 'direct', { durable: false, autoDelete: true });
  await ch.assertQueue(queue, { durable: false, autoDelete: true });
  await ch.bindQueue(queue, exchange, 'orders');
  await ch.consume(queue, (m) => {
    if (m) {
      received.push(m);
      ch.ack(m);
    }
  });
});
afterAll(async () => {
  await conn?.close().catch(() => undefined);
});

function toml(ex: string): string {
  return `[targets.orders]\nkind = "amqp"\nurl = "${AMQP_URL}"\nexchange = "${ex}"\nrouting_key = "orders"\n`;
}

describe('amqp target', () => {
  it('publishes with publisher confirms: body, headers and message id checked', async () => {
    const srv = await startWithConfig(toml(exchange));
    const task = await srv.client.mustCreate(oneShot('orders'));
    const run = await finalRun(srv, task.task_id);
    expect(run.status).toBe('SUCCESS');
    expect(run.attempts).toBe(1);
    expect((run as { response_body?: string }).response_body).toBe('confirmed');
    const msg = await waitUntil(() => received.find((m) => m.properties.messageId === run.run_id), (m) => m !== undefined, WAIT, 'the message');
    const h = msg!.properties.headers!;
    expect(h['x-xcron-task-id']).toBe(task.task_id);
    expect(h['x-xcron-fire-id']).toBe(run.run_id);
    expect(h['x-xcron-scheduled-time']).toBe(String(run.scheduled_time));
    expect(h['x-xcron-attempt']).toBe('1');
    expect(String(h['x-xcron-report-token'])).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    expect(msg!.properties.contentType).toBe('application/json');
    expect(msg!.content.toString('utf8')).toBe(JSON.stringify({ order: 42, note: 'é' }));
    expect(JSON.stringify(await srv.client.mustQuery(task.task_id))).not.toContain('guest:guest');
  }, 60_000);

  it('a message no queue receives (mandatory) and an unknown exchange are refusals: retried, then a final failure', async () => {
    const srv = await startWithConfig(`${toml(exchange)}\n[targets.ghost]\nkind = "amqp"\nurl = "${AMQP_URL}"\nexchange = "${uniq('no-such-exchange')}"\nrouting_key = "x"\n`);
    const retry = { max_attempts: 2, backoff_ms: 50, max_backoff_ms: 100 };
    const unroutable = await srv.client.mustCreate(oneShot('orders', { retry }, { key: 'nobody-bound' }));
    const ghost = await srv.client.mustCreate(oneShot('ghost', { retry }));
    const good = await srv.client.mustCreate(oneShot('orders'));
    const u = await finalRun(srv, unroutable.task_id);
    expect(u.status).toBe('FAIL');
    expect(u.attempts).toBe(2);
    expect(u.error).toContain('unroutable');
    const g = await finalRun(srv, ghost.task_id);
    expect(g.status).toBe('FAIL');
    expect(g.attempts).toBe(2);
    expect(g.error).toMatch(/NOT_FOUND|404|no exchange/i);
    expect(g.error).not.toContain('guest:guest');
    expect((await finalRun(srv, good.task_id)).status).toBe('SUCCESS');
  }, 60_000);
});
