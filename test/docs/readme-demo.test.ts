/**
 * The one-minute demo of README.md, run as printed: the receiver one-liner as a real `node -e`
 * process, the createTask body sent to the real built server with its default configuration, and
 * the callbacks the receiver prints. The server starts with the README's command line (`--dev`) and
 * nothing else that allows callbacks to this machine; without `--dev` the demo's callback is refused
 * with a message naming it. Only the ports change (the demo's 8000 and 9000 become free ports).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.js';
import { REPO_ROOT, XcronServer, cleanupTempDirs, ensureBuilt, stopAllServers, takeStarted } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

const README = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');

/** The demo section: from its heading to the next second-level heading. */
function demoSection(): string {
  const at = README.indexOf('## A one-minute demo');
  if (at < 0) throw new Error('README.md: no "## A one-minute demo" section');
  const end = README.indexOf('\n## ', at + 1);
  return README.slice(at, end < 0 ? undefined : end);
}

let receiver: ChildProcess | null = null;
let printed = '';

beforeAll(() => {
  ensureBuilt();
}, 600_000);

afterEach(async (ctx) => {
  const servers = takeStarted();
  if (ctx.task.result?.state === 'fail') {
    for (const s of servers) console.log(s.tail(40));
    console.log(`receiver output:\n${printed}`);
  }
  if (receiver && receiver.exitCode === null && receiver.signalCode === null) {
    const r = receiver;
    r.kill('SIGKILL');
    await new Promise((done) => r.once('exit', done));
  }
  receiver = null;
  printed = '';
  await stopAllServers();
});

afterAll(() => {
  cleanupTempDirs();
});

describe('the README demo', () => {
  it('the receiver one-liner prints the callbacks of the task the demo creates, one fire id per tick', async () => {
    const section = demoSection();
    const script = /node -e "([^"]+)"/.exec(section)?.[1];
    if (!script) throw new Error('README demo: no node -e "…" receiver');
    const body = /xcron\/createTask[^\n]*-d '(\{[\s\S]*?\})'/.exec(section)?.[1];
    if (!body) throw new Error("README demo: no createTask -d '{…}' body");
    expect(script).toContain('.listen(9000)');
    expect(body).toContain('http://127.0.0.1:9000/');
    const serverArgs = /bash build\.sh && \.\/xcron_server([^\n`]*)\n/.exec(section)?.[1]?.trim().split(/\s+/).filter(Boolean);
    expect(serverArgs).toEqual(['--dev']);

    const port = await freePort();
    receiver = spawn(process.execPath, ['-e', script.replace('.listen(9000)', `.listen(${port})`)], { stdio: ['ignore', 'pipe', 'pipe'] });
    receiver.stdout!.on('data', (d: Buffer) => (printed += d.toString()));
    receiver.stderr!.on('data', (d: Buffer) => (printed += d.toString()));

    // The server's own callback policy (devCallbacks: false), plus the README's flag.
    const srv = await XcronServer.start({ devCallbacks: false, args: serverArgs });
    // The receiver may still be starting: a refused first attempt is retried by the server anyway.
    const res = await fetch(`${srv.baseUrl}/xcron/createTask`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: body.replace('127.0.0.1:9000', `127.0.0.1:${port}`),
    });
    const created = (await res.json()) as { code: number; data: { task_id: string } };
    expect(created.code).toBe(0);
    const id = created.data.task_id;

    const lines = await waitUntil(
      () => printed.split('\n').filter((l) => l.startsWith(`${id}:`)),
      (ls) => ls.length >= 2,
      30_000,
      'two callbacks printed by the demo receiver',
    );
    const ticks = lines.map((l) => {
      const m = /^(\S+):(\d+) (.*)$/.exec(l);
      if (!m) throw new Error(`unexpected receiver line ${l}`);
      expect(m[1]).toBe(id);
      expect(JSON.parse(m[3]!)).toEqual({ hello: 'xcron' });
      return Number(m[2]);
    });
    // "*/2 * * * * *": ticks on even seconds, 2 s apart, each printed once.
    expect(ticks[0]! % 2000).toBe(0);
    expect(ticks[1]! - ticks[0]!).toBe(2000);
    expect(new Set(ticks).size).toBe(ticks.length);

    const del = await fetch(`${srv.baseUrl}/xcron/deleteTask`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ task_id: id }) });
    expect(((await del.json()) as { code: number }).code).toBe(0);
  });

  it('without --dev the demo task is refused, and the message says to start with --dev', async () => {
    const body = /xcron\/createTask[^\n]*-d '(\{[\s\S]*?\})'/.exec(demoSection())?.[1];
    if (!body) throw new Error("README demo: no createTask -d '{…}' body");
    const srv = await XcronServer.start({ devCallbacks: false });
    const res = await fetch(`${srv.baseUrl}/xcron/createTask`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
    const answer = (await res.json()) as { code: number; message: string };
    expect(res.status).toBe(400);
    expect(answer.code).toBe(1011);
    expect(answer.message).toContain('start the server with --dev');
  });
});
