/**
 * Queue messages are signed like HTTP callbacks when `[callback] signing_secrets` is set: the
 * X-Xcron-Signature value (`t=<unix s>,v1=<hex>` per secret, HMAC-SHA256 over `<t>.<body>`) as the
 * `signature` field of a Redis stream entry, the `x-xcron-signature` AMQP header and the
 * `Xcron-Signature` NATS header. A receiver checks it with the same code as for HTTP. Real brokers:
 * a redis-server and a nats-server of the test's own, the machine's RabbitMQ with a queue of its own.
 */
import { createHmac } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect as natsConnect } from '@nats-io/transport-node';
import { connect as amqpConnect } from 'amqplib';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisServer, stopAllRedis } from '../helpers/redis.js';
import { waitUntil } from '../helpers/wait.js';
import { AMQP_URL, WAIT, finalRun, oneShot, startWithConfig, targetSuite, uniq } from './common.js';
import { NatsServer, natsAvailable, stopAllNats } from './nats-server.js';

targetSuite();
afterAll(async () => {
  await stopAllRedis();
  await stopAllNats();
}, 30_000);

const SECRETS = ['queue-signing-secret-one', 'queue-signing-secret-two'];

/** Checks a signature value against the body with each secret; returns its timestamp. */
function verify(sig: string, body: string): number {
  const parts = sig.split(',');
  const t = /^t=(\d+)$/.exec(parts[0] ?? '')?.[1];
  expect(t, sig).toBeDefined();
  expect(parts.slice(1)).toEqual(SECRETS.map((s) => `v1=${createHmac('sha256', s).update(`${t}.${body}`).digest('hex')}`));
  return Number(t);
}

describe('queue messages signed with the callback signing secrets', () => {
  it.skipIf(!natsAvailable())('a Redis stream entry, an AMQP message and a NATS message each carry a signature over the body', async () => {
    const redis = await RedisServer.start();
    const nats = await NatsServer.start();
    const stream = uniq('signed');
    const queue = uniq('xcron-test-signed');
    const nc = await natsConnect({ servers: `127.0.0.1:${nats.port}` });
    const amqp = await amqpConnect(AMQP_URL);
    const client = new Redis(redis.port, '127.0.0.1');
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: 'SIGNED', subjects: ['signed.>'] });
      const ch = await amqp.createChannel();
      await ch.assertQueue(queue, { durable: false, autoDelete: false });
      const srv = await startWithConfig(
        [
          '[callback]', `signing_secrets = ${JSON.stringify(SECRETS)}`, '',
          '[targets.rs]', 'kind = "redis_stream"', `url = "${redis.url}"`, `stream = "${stream}"`, '',
          '[targets.mq]', 'kind = "amqp"', `url = "${AMQP_URL}"`, 'exchange = ""', `routing_key = "${queue}"`, '',
          '[targets.js]', 'kind = "nats"', `url = "${nats.url}"`, 'subject = "signed.jobs"', '',
        ].join('\n'),
      );
      const ids = await Promise.all(['rs', 'mq', 'js'].map(async (t) => (await srv.client.mustCreate(oneShot(t, {}, { body: { target: t, note: 'é' } }))).task_id));
      for (const id of ids) expect((await finalRun(srv, id)).status).toBe('SUCCESS');
      const now = Math.floor(Date.now() / 1000);

      const entries = (await client.xrange(stream, '-', '+')) as [string, string[]][];
      expect(entries).toHaveLength(1);
      const f = entries[0]![1];
      const field = (k: string): string => f[f.indexOf(k) + 1]!;
      expect(field('body')).toBe(JSON.stringify({ target: 'rs', note: 'é' }));
      expect(Math.abs(verify(field('signature'), field('body')) - now)).toBeLessThan(300);

      const m = await waitUntil(() => ch.get(queue, { noAck: true }), (x) => x !== false, WAIT, 'the AMQP message');
      if (m === false) throw new Error('no AMQP message');
      const mqBody = m.content.toString('utf8');
      expect(mqBody).toBe(JSON.stringify({ target: 'mq', note: 'é' }));
      expect(Math.abs(verify(String(m.properties.headers!['x-xcron-signature']), mqBody) - now)).toBeLessThan(300);

      const jm = await jsm.streams.getMessage('SIGNED', { seq: 1 });
      expect(jm!.string()).toBe(JSON.stringify({ target: 'js', note: 'é' }));
      expect(Math.abs(verify(jm!.header.get('Xcron-Signature'), jm!.string()) - now)).toBeLessThan(300);

      const text = srv.lines.join('\n') + JSON.stringify(await srv.client.mustQuery(ids[0]!));
      for (const s of SECRETS) expect(text).not.toContain(s);
      await ch.deleteQueue(queue);
    } finally {
      client.disconnect();
      await amqp.close().catch(() => undefined);
      await nc.close();
    }
  }, 90_000);
});
