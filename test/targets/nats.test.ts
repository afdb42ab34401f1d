/**
 * NATS JetStream targets against the machine's nats-server (127.0.0.1:4222) with a stream of this
 * test run's own: the JetStream ack as the run's outcome, headers and body checked; a subject no
 * stream captures is a refusal recorded as a final failure.
 */
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NATS_URL, finalRun, oneShot, startWithConfig, targetSuite, uniq } from './common.js';

targetSuite();

let nc: NatsConnection;
let jsm: JetStreamManager;
const stream = uniq('XCRONTEST').replace(/-/g, '_');
const subject = `${stream}.orders`;

beforeAll(async () => {
  nc = await connect({ servers: '127.0.0.1:4222' });
  jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: stream, subjects: [`${stream}.>`] });
});
afterAll(async () => {
  await jsm?.streams.delete(stream).catch(() => undefined);
  await nc?.close();
});

describe('nats target', () => {
  it('publishes to JetStream with an ack: headers, body and the stream sequence checked; an uncaptured subject fails', async () => {
    const srv = await startWithConfig(`[targets.orders]\nkind = "nats"\nurl = "${NATS_URL}"\nsubject = "${subject}"\n`);
    const task = await srv.client.mustCreate(oneShot('orders'));
    const lost = await srv.client.mustCreate(oneShot('orders', { retry: { max_attempts: 2, backoff_ms: 50, max_backoff_ms: 100 }, timeout_ms: 2000 }, { key: `${uniq('nostream')}.x` }));
    const run = await finalRun(srv, task.task_id);
    expect(run.status).toBe('SUCCESS');
    expect((run as { response_body?: string }).response_body).toMatch(new RegExp(`^${stream}:\\d+$`));
    const seq = Number((run as { response_body?: string }).response_body!.split(':')[1]);
    const m = await jsm.streams.getMessage(stream, { seq });
    expect(m!.subject).toBe(subject);
    expect(m!.header.get('Xcron-Task-Id')).toBe(task.task_id);
    expect(m!.header.get('Xcron-Fire-Id')).toBe(run.run_id);
    expect(m!.header.get('Xcron-Scheduled-Time')).toBe(String(run.scheduled_time));
    expect(m!.header.get('Xcron-Attempt')).toBe('1');
    expect(m!.header.get('Nats-Msg-Id')).toBe(run.run_id);
    expect(m!.string()).toBe(JSON.stringify({ order: 42, note: 'é' }));
    const f = await finalRun(srv, lost.task_id);
    expect(f.status).toBe('FAIL');
    expect(f.attempts).toBe(2);
    expect(f.error).toContain('nats');
  }, 60_000);
});
