/**
 * A RabbitMQ outage at fire time: the broker (a rabbitmq-server of this test's own, on its own
 * ports and data directory) is stopped before the fires are due and started again after they
 * failed at least once. Every fire is then published and confirmed, and each reaches the queue
 * exactly once: nothing lost, no duplicate.
 */
import { connect } from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/wait.js';
import { finalRun, oneShot, startWithConfig, targetSuite, uniq } from './common.js';
import { RabbitServer, rabbitAvailable } from './rabbit.js';

targetSuite();
let rabbit: RabbitServer | null = null;
afterAll(async () => {
  await rabbit?.destroy();
}, 60_000);

describe('amqp target, broker outage', () => {
  it.skipIf(!rabbitAvailable())('broker down at fire time, then back: retried, delivered once confirmed, nothing lost', async () => {
    rabbit = await RabbitServer.start();
    const queue = uniq('xcron-outage');
    const setup = await connect(rabbit.url);
    const ch = await setup.createChannel();
    await ch.assertQueue(queue, { durable: true });
    await setup.close();
    const srv = await startWithConfig(`[targets.jobs]\nkind = "amqp"\nurl = "${rabbit.url}"\nexchange = ""\nrouting_key = "${queue}"\n`);
    const warm = await srv.client.mustCreate(oneShot('jobs'));
    expect((await finalRun(srv, warm.task_id)).status).toBe('SUCCESS');

    await rabbit.stop();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await srv.client.mustCreate(oneShot('jobs', { retry: { max_attempts: 100, backoff_ms: 2000, max_backoff_ms: 4000 }, timeout_ms: 2000 }))).task_id);
    await waitUntil(
      async () => Promise.all(ids.map(async (id) => (await srv.client.call<{ runs: { attempts: number; status: string; error: string | null }[] }>('GET', `/xcron/taskRuns?task_id=${id}`)).body.data.runs[0])),
      (runs) => runs.every((r) => r !== undefined && r.attempts >= 2),
      60_000,
      'every fire retried while the broker is down',
    );
    await rabbit.restart();
    const runs = await Promise.all(ids.map((id) => finalRun(srv, id, 120_000)));
    for (const r of runs) expect(r.status).toBe('SUCCESS');
    expect(runs.every((r) => r.attempts >= 2)).toBe(true);

    const reader = await connect(rabbit.url);
    try {
      const rc = await reader.createChannel();
      const fires: string[] = [];
      for (;;) {
        const m = await rc.get(queue, { noAck: true });
        if (m === false) break;
        fires.push(String(m.properties.messageId));
      }
      for (const r of runs) expect(fires.filter((f) => f === r.run_id)).toHaveLength(1);
    } finally {
      await reader.close();
    }
  }, 400_000);
});
