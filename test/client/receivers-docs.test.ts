/**
 * The Python and Go receivers of docs/callbacks.md (`<!-- snippet:receiver-python -->`,
 * `<!-- snippet:receiver-go -->`), run as printed against the real server's signed callbacks: the
 * server fires tasks at them (they know only the second of its two secrets), and replays of a
 * captured callback check the refusals (changed body, old timestamp, wrong secret) and the dedupe.
 * The Go half needs `go` on the PATH (.ci/run installs golang-go); without it, it is skipped with
 * the reason printed.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { XcronClient, signPayload } from '../../clients/typescript/src/index.js';
import { docSnippet } from '../ops/helpers.js';
import { Receiver, header, type ReceivedRequest } from '../helpers/receiver.js';
import { freePort } from '../helpers/ports.js';
import { XcronServer, cleanupTempDirs, stopAllServers, takeStarted, tempDir, which } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

const S1 = 'whsec-docs-current-0123456789ab';
const S2 = 'whsec-docs-next-0123456789abcd';
const OTHER = 'whsec-docs-other-0123456789abc';

const GO = which('go');
if (!GO) console.log('receivers-docs: the Go receiver is skipped: no `go` on the PATH (install golang-go; .ci/run does)');

let server: XcronServer;
let client: XcronClient;
let capture: Receiver;
let captured: ReceivedRequest;
const children: ChildProcess[] = [];

beforeAll(async () => {
  capture = await Receiver.start();
  server = await XcronServer.start({ env: { XCRON_CALLBACK_SIGNING_SECRETS: JSON.stringify([S1, S2]) } });
  client = new XcronClient({ baseUrl: server.baseUrl });
  // one real signed callback to replay at the receivers
  const { task_id } = await client.createTask({ type: 1, format: '0 0 1 1 *', callback: { url: capture.url('/capture'), body: { order: 42, note: 'héllo ✓' } } });
  const { run_id } = await client.triggerTask(task_id);
  captured = await capture.waitForRequest((r) => header(r, 'x-xcron-fire-id') === run_id, 20_000, 'the callback to replay');
});
afterEach((ctx) => {
  const started = takeStarted();
  if (ctx.task.result?.state === 'fail') for (const s of started) console.log(s.tail(30));
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await stopAllServers();
  await capture.close();
  cleanupTempDirs();
});

/** Starts a receiver process and waits until it answers HTTP. */
async function startReceiver(cmd: string, args: string[], secrets: string[]): Promise<{ url: string; output: () => string }> {
  const port = await freePort();
  let out = '';
  const child = spawn(cmd, args, { env: { ...process.env, XCRON_SECRETS: secrets.join(','), HOST: '127.0.0.1', PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const url = `http://127.0.0.1:${port}/hook`;
  await waitUntil(
    async () => {
      if (child.exitCode !== null) throw new Error(`${cmd} exited ${child.exitCode}: ${out}`);
      return (await fetch(url, { method: 'POST', body: '{}' })).status;
    },
    (s) => s === 401, // up, and refusing an unsigned request
    30_000,
    `${cmd} receiver on port ${port}`,
  );
  return { url, output: () => out };
}

async function replay(url: string, change: { body?: string; signature?: string } = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(captured.headers)) if (typeof v === 'string' && (k.startsWith('x-xcron-') || k === 'content-type')) headers[k] = v;
  if (change.signature !== undefined) headers['x-xcron-signature'] = change.signature;
  const res = await fetch(url, { method: 'POST', headers, body: change.body ?? captured.body });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** The same checks for either language. */
async function exercise(url: string): Promise<void> {
  // the server fires at the receiver: it verifies with the second of its secrets and answers 200
  const body = { job: 'settle', n: 7 };
  const { task_id } = await client.createTask({ type: 1, format: '0 0 1 1 *', retry: { max_attempts: 1 }, callback: { url, body } });
  const { run_id } = await client.triggerTask(task_id);
  const runs = await waitUntil(() => client.taskRuns(task_id), (p) => p.runs[0]?.status === 'SUCCESS' || p.runs[0]?.status === 'FAIL', 30_000, 'the run finished');
  expect(runs.runs[0]).toMatchObject({ run_id, status: 'SUCCESS', http_status: 200 });
  expect(JSON.parse(runs.runs[0]!.response_body!)).toEqual({ ok: true, fire_id: run_id, job: body });
  await client.deleteTask(task_id);

  // a captured callback: accepted once, then a duplicate
  const fire = header(captured, 'x-xcron-fire-id')!;
  expect(await replay(url)).toEqual({ status: 200, json: { ok: true, fire_id: fire, job: { order: 42, note: 'héllo ✓' } } });
  expect(await replay(url)).toEqual({ status: 200, json: { ok: true, duplicate: true } });
  // refused: a changed body, a wrong secret, an old timestamp, no signature
  const sig = header(captured, 'x-xcron-signature')!;
  const t = Number(/^t=(\d+)/.exec(sig)![1]);
  expect((await replay(url, { body: captured.body.replace('42', '43') })).status).toBe(401);
  expect((await replay(url, { signature: signPayload([OTHER], captured.body, t) })).status).toBe(401);
  expect((await replay(url, { signature: signPayload([S2], captured.body, t - 3600) })).status).toBe(401);
  expect((await replay(url, { signature: '' })).status).toBe(401);
}

describe('receiver examples of docs/callbacks.md, run as printed', () => {
  it('Python (http.server): verifies the real callbacks with the second secret, refuses tampering, old timestamps and wrong secrets, dedupes', async () => {
    const dir = tempDir('xcron-recv-py-');
    const file = join(dir, 'receiver.py');
    writeFileSync(file, `${docSnippet('verify-python')}\n${docSnippet('receiver-python')}`);
    const r = await startReceiver('python3', [file], [OTHER.replace('other', 'unused'), S2]);
    await exercise(r.url);
  }, 90_000);

  it.skipIf(!GO)('Go (net/http): verifies the real callbacks with the second secret, refuses tampering, old timestamps and wrong secrets, dedupes', async () => {
    const dir = tempDir('xcron-recv-go-');
    writeFileSync(join(dir, 'receiver.go'), docSnippet('receiver-go'));
    const bin = join(dir, 'receiver');
    execFileSync(GO!, ['build', '-o', bin, 'receiver.go'], { cwd: dir, env: { ...process.env, GO111MODULE: 'off', ...(process.env.HOME || process.env.GOCACHE ? {} : { GOCACHE: join(dir, '.gocache') }) }, timeout: 180_000 });
    const r = await startReceiver(bin, [], [OTHER.replace('other', 'unused'), S2]);
    await exercise(r.url);
  }, 240_000);
});
