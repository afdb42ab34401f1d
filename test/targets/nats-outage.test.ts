/**
 * A NATS outage at fire time: the nats-server (one of this test's own, on a free port with its own
 * JetStream store directory) is stopped before the fires are due and started again after each
 * failed at least once. Every fire is then published and acknowledged by JetStream, and each is
 * in the stream exactly once (counted by its Xcron-Fire-Id header): nothing lost, no duplicate.
 */
import { jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/wait.js';
import { finalRun, oneShot, startWithConfig, targetSuite } from './common.js';
import { NatsServer, natsAvailable, stopAllNats } from './nats-server.js';

targetSuite();
afterAll(() => stopAllNats(), 30_000);

/** The fire ids of every message in `stream`, one entry per message. */
async function firesIn(url: string, stream: string): Promise<string[]> {
  const nc = await connect({ servers: url.replace('nats://', '') });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(stream);
    const fires: string[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
      if (m) fires.push(m.header.get('Xcron-Fire-Id'));
    }
    return fires;
  } finally {
    await nc.close();
  }
}

describe('nats target, server outage', () => {
  it.skipIf(!natsAvailable())('server down at fire time, then back: retried, delivered once confirmed, nothing lost', async () => {
    const nats = await NatsServer.start();
    const setup = await connect({ servers: `127.0.0.1:${nats.port}` });
    await (await jetstreamManager(setup)).streams.add({ name: 'JOBS', subjects: ['jobs.>'], storage: StorageType.File });
    await setup.close();
    const srv = await startWithConfig(`[targets.jobs]\nkind = "nats"\nurl = "${nats.url}"\nsubject = "jobs.orders"\n`);
    const warm = await srv.client.mustCreate(oneShot('jobs'));
    expect((await finalRun(srv, warm.task_id)).status).toBe('SUCCESS');

    await nats.stop();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await srv.client.mustCreate(oneShot('jobs', { retry: { max_attempts: 100, backoff_ms: 1000, max_backoff_ms: 2000 }, timeout_ms: 1500 }))).task_id);
    const failing = await waitUntil(
      async () => Promise.all(ids.map(async (id) => (await srv.client.call<{ runs: { attempts: number; status: string; error: string | null }[] }>('GET', `/xcron/taskRuns?task_id=${id}`)).body.data.runs[0])),
      (runs) => runs.every((r) => r !== undefined && r.attempts >= 2),
      60_000,
      'every fire retried while the server is down',
    );
    for (const r of failing) expect(r!.status).toBe('RUNNING');
    await nats.restart();
    const runs = await Promise.all(ids.map((id) => finalRun(srv, id, 120_000)));
    for (const r of runs) {
      expect(r.status).toBe('SUCCESS');
      expect(r.attempts).toBeGreaterThanOrEqual(2);
      expect((r as { response_body?: string }).response_body).toMatch(/^JOBS:\d+$/);
    }
    const fires = await firesIn(nats.url, 'JOBS');
    for (const r of [...runs, await finalRun(srv, warm.task_id)]) expect(fires.filter((f) => f === r.run_id)).toHaveLength(1);
    expect(fires).toHaveLength(6);
  }, 300_000);
});
