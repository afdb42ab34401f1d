/** Shared pieces of the queue target tests: a server started with an xcron.toml of targets, run polling. */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { taskRuns, type RunView } from '../async/common.js';
import { XcronServer, cleanupTempDirs, ensureBuilt, stopAllServers, takeStarted, tempDir } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

export const WAIT = 30_000;
export const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';
export const NATS_URL = 'nats://127.0.0.1:4222';

export const uniq = (prefix: string): string => `${prefix}-${randomBytes(5).toString('hex')}`;

/** Build once; servers stopped after each test (their log tails printed when it failed). */
export function targetSuite(): void {
  beforeAll(() => ensureBuilt(), 600_000);
  afterEach(async (ctx) => {
    const servers = takeStarted();
    if (ctx.task.result?.state === 'fail') for (const s of servers) console.log(s.tail(80));
    await stopAllServers();
  });
  afterAll(() => cleanupTempDirs());
}

/** Starts the built server in a new directory holding `toml` as its xcron.toml. */
export async function startWithConfig(toml: string, env: Record<string, string> = {}, cwd?: string): Promise<XcronServer> {
  const dir = cwd ?? tempDir('xcron-targets-');
  writeFileSync(join(dir, 'xcron.toml'), toml);
  return XcronServer.start({ cwd: dir, env: { XCRON_DELIVERY_BACKOFF_MS: '100', XCRON_DELIVERY_MAX_BACKOFF_MS: '200', ...env } });
}

/** A one-shot task due at the next whole second but one, to target `target`. */
export function oneShot(target: string, extra: Record<string, unknown> = {}, callback: Record<string, unknown> = {}): Record<string, unknown> {
  return { type: 2, format: String(Math.floor(Date.now() / 1000) + 2), callback: { target, body: { order: 42, note: 'é' }, ...callback }, ...extra };
}

/** Waits until the task has a run in a final state and returns it. */
export async function finalRun(srv: XcronServer, taskId: string, timeoutMs = WAIT): Promise<RunView> {
  const runs = await waitUntil(() => taskRuns(srv.baseUrl, taskId), (rs) => rs.some((r) => r.status === 'SUCCESS' || r.status === 'FAIL'), timeoutMs, `a final run of ${taskId}`);
  return runs.find((r) => r.status === 'SUCCESS' || r.status === 'FAIL')!;
}

export type { RunView };

/** Waits until the task's newest run is RUNNING (an async run awaiting its report). */
export async function runningRun(srv: XcronServer, taskId: string): Promise<void> {
  await waitUntil(
    async () => (await srv.client.call<{ runs: { status: string }[] }>('GET', `/xcron/taskRuns?task_id=${taskId}`)).body.data.runs[0]?.status,
    (s) => s === 'RUNNING',
    WAIT,
    'the run RUNNING (awaiting its report)',
  );
}
