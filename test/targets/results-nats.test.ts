/**
 * Results through NATS JetStream: an async task's message goes out to a `nats` target, the test
 * plays the executor (reads the message from the stream, takes its fire id and report token) and
 * publishes the report to the results subject; xcron pulls it through its durable consumer and
 * applies it like POST /xcron/reportRun, acknowledging after recording. A crash after recording
 * and before the acknowledgement (the real server killed by its test hook): after the restart
 * JetStream delivers the report again and it changes nothing (applied once). A restart of the
 * nats-server between the job and the report: the consumer picks up again.
 * Runs on a nats-server of the test's own.
 */
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { XcronServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';
import { WAIT, finalRun, oneShot, runningRun, startWithConfig, targetSuite, uniq } from './common.js';
import { NatsServer, natsAvailable, stopAllNats } from './nats-server.js';

targetSuite();

let nats: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  if (!natsAvailable()) return;
  nats = await NatsServer.start();
  nc = await connect({ servers: `127.0.0.1:${nats.port}` });
  jsm = await jetstreamManager(nc);
}, 60_000);
afterAll(async () => {
  await nc?.close();
  await stopAllNats();
}, 30_000);

/** A jobs stream and a results stream of the test's own; the config naming both. */
async function setup(): Promise<{ jobs: string; results: string; toml: string }> {
  const jobs = uniq('JOBS').replace(/-/g, '_');
  const results = uniq('RESULTS').replace(/-/g, '_');
  await jsm.streams.add({ name: jobs, subjects: [`${jobs}.>`] });
  const toml = [
    '[targets.jobs]', 'kind = "nats"', `url = "${nats.url}"`, `subject = "${jobs}.run"`, '',
    '[results]', 'kind = "nats"', `url = "${nats.url}"`, `stream = "${results}"`, `subject = "${results}.in"`, 'group = "xcron"', '',
  ].join('\n');
  return { jobs, results, toml };
}

/** The executor's side: the job message of `taskId` (its fire id and report token). */
async function takeJob(stream: string, taskId: string): Promise<{ fire_id: string; report_token: string }> {
  const m = await waitUntil(
    async () => {
      const info = await jsm.streams.info(stream);
      for (let seq = info.state.first_seq; info.state.messages > 0 && seq <= info.state.last_seq; seq++) {
        const msg = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
        if (msg?.header.get('Xcron-Task-Id') === taskId) return msg;
      }
      return null;
    },
    (x) => x !== null,
    WAIT,
    `the job message of ${taskId}`,
  );
  return { fire_id: m!.header.get('Xcron-Fire-Id'), report_token: m!.header.get('Xcron-Report-Token') };
}

/** Reports neither acknowledged nor still to deliver on the durable consumer. */
async function drained(stream: string): Promise<boolean> {
  const c = await jsm.consumers.info(stream, 'xcron');
  return c.num_ack_pending === 0 && c.num_pending === 0;
}

const asyncTask = (): Record<string, unknown> => oneShot('jobs', { completion: 'async', async_timeout_ms: 600_000 });

describe.skipIf(!natsAvailable())('results through NATS JetStream', () => {
  it('applies a report published to the results subject and acknowledges it; bad reports are dropped, not retried forever', async () => {
    const { jobs, results, toml } = await setup();
    const srv = await startWithConfig(toml);
    const task = await srv.client.mustCreate(asyncTask());
    const job = await takeJob(jobs, task.task_id);
    await runningRun(srv, task.task_id);
    const js = jetstream(nc);
    await js.publish(`${results}.in`, JSON.stringify({ run_id: job.fire_id, token: 'wrong-token-wrong-token', status: 'FAIL' }));
    await js.publish(`${results}.in`, 'not json');
    await js.publish(`${results}.in`, JSON.stringify({ run_id: job.fire_id, token: job.report_token, status: 'SUCCESS', message: 'done', output: { rows: 3 } }));
    const run = await finalRun(srv, task.task_id);
    expect(run.status).toBe('SUCCESS');
    expect(run.message).toBe('done');
    expect(run.output).toEqual({ rows: 3 });
    await waitUntil(() => drained(results), (d) => d, WAIT, 'every report acknowledged');
    expect(srv.lines.some((l) => l.includes('report from the results queue refused'))).toBe(true);
    expect(srv.lines.some((l) => l.includes('report from the results queue is not JSON'))).toBe(true);
  }, 90_000);

  it('keeps consuming after the nats-server restarts', async () => {
    const { jobs, results, toml } = await setup();
    const srv = await startWithConfig(toml);
    const task = await srv.client.mustCreate(asyncTask());
    const job = await takeJob(jobs, task.task_id);
    await runningRun(srv, task.task_id);
    await nats.restart();
    const report = JSON.stringify({ run_id: job.fire_id, token: job.report_token, status: 'SUCCESS', message: 'after the restart' });
    // The test's own connection reconnects too: publish once it is back.
    await waitUntil(() => jetstream(nc).publish(`${results}.in`, report).then(() => true, () => false), (ok) => ok, WAIT, 'the report published after the restart', 500);
    const run = await finalRun(srv, task.task_id);
    expect(run.status).toBe('SUCCESS');
    expect(run.message).toBe('after the restart');
    await waitUntil(() => drained(results), (d) => d, WAIT, 'the report acknowledged');
  }, 120_000);

  it('a crash after recording and before the ack: delivered again after the restart, applied once', async () => {
    const { jobs, results, toml } = await setup();
    const srv = await startWithConfig(toml, { XCRONTEST_RESULTS_CRASH: 'before_ack', XCRON_LOG_LEVEL: 'debug' });
    const task = await srv.client.mustCreate(asyncTask());
    const job = await takeJob(jobs, task.task_id);
    await runningRun(srv, task.task_id);
    await jetstream(nc).publish(`${results}.in`, JSON.stringify({ run_id: job.fire_id, token: job.report_token, status: 'SUCCESS', message: 'done once' }));
    const exit = await srv.exited;
    expect(exit.signal).toBe('SIGKILL');
    expect((await jsm.consumers.info(results, 'xcron')).num_ack_pending).toBe(1);
    const again = await srv.restart({ env: { XCRONTEST_RESULTS_CRASH: '' } });
    const run = await finalRun(again, task.task_id);
    expect(run.status).toBe('SUCCESS');
    expect(run.message).toBe('done once');
    // Redelivered once the consumer's ack wait (30 s) has passed, then acknowledged.
    await waitUntil(() => drained(results), (d) => d, 90_000, 'the report acknowledged after the restart');
    const applied = again.lines.filter((l) => l.includes('report applied from the results queue'));
    expect(applied).toHaveLength(1);
    expect(applied[0]).toContain('"already":true');
  }, 180_000);
});
