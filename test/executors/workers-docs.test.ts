/**
 * The example workers of docs/executors.md (`<!-- snippet:executor-node -->`, `executor-go`), run
 * as printed against the real server: each registers itself, a broadcast task to their group
 * sends one shard to each, and a stopped worker unregisters. The Go worker needs `go` on the PATH
 * (.ci/run installs golang-go); without it only the Node worker runs, and the reason is printed.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docSnippet } from '../ops/helpers.js';
import { freePort } from '../helpers/ports.js';
import { REPO_ROOT, XcronServer, cleanupTempDirs, ensureBuilt, stopAllServers, tempDir, which } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';
import { executors, groupTask, triggerAndWait } from './common.js';

const DOC = join(REPO_ROOT, 'docs', 'executors.md');

const GO = which('go');
if (!GO) console.log('workers-docs: the Go worker is skipped: no `go` on the PATH (install golang-go; .ci/run does)');

let srv: XcronServer;
const children: ChildProcess[] = [];
beforeAll(async () => {
  ensureBuilt();
  srv = await XcronServer.start();
}, 600_000);
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await stopAllServers();
  cleanupTempDirs();
});

function startWorker(cmd: string, args: string[], cwd: string, env: Record<string, string>): ChildProcess {
  const c = spawn(cmd, args, { cwd, env: { ...process.env, XCRON_URL: srv.baseUrl, GROUP: 'docs-workers', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  c.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  c.on('exit', (code) => {
    if (code !== 0 && code !== null) console.log(`${cmd} worker exited ${code}: ${out}`);
  });
  children.push(c);
  return c;
}

describe('docs/executors.md example workers', () => {
  it('register, receive one broadcast shard each, and unregister when stopped', async () => {
    const dir = tempDir('xcron-workers-');
    writeFileSync(join(dir, 'worker.mjs'), docSnippet('executor-node', DOC));
    const nodePort = await freePort();
    const nodeWorker = startWorker(process.execPath, ['worker.mjs'], dir, { PORT: String(nodePort) });
    const addrs = [`http://127.0.0.1:${nodePort}/run`];
    if (GO) {
      writeFileSync(join(dir, 'worker.go'), docSnippet('executor-go', DOC));
      const bin = join(dir, 'go-worker');
      execFileSync(GO, ['build', '-o', bin, 'worker.go'], { cwd: dir, env: { ...process.env, GO111MODULE: 'off', ...(process.env.HOME || process.env.GOCACHE ? {} : { GOCACHE: join(dir, '.gocache') }) }, timeout: 180_000 });
      const goPort = await freePort();
      startWorker(bin, [], dir, { PORT: String(goPort) });
      addrs.push(`http://127.0.0.1:${goPort}/run`);
    }
    await waitUntil(() => executors(srv), (r) => r.body.data.groups[0]?.live === addrs.length, 180_000, 'every worker registered', 250);
    await new Promise((r) => setTimeout(r, 600)); // past the node's live-list cache
    const id = (await srv.client.mustCreate(groupTask('docs-workers', 'broadcast'))).task_id;
    const run = await triggerAndWait(srv, id);
    expect(run.status).toBe('SUCCESS');
    expect(run.shards?.map((s) => s.url).sort()).toEqual([...addrs].sort());

    nodeWorker.kill('SIGTERM');
    await waitUntil(() => executors(srv), (r) => !r.body.data.groups[0]?.instances.some((i) => i.address === addrs[0]), 20_000, 'the stopped worker unregistered');
  }, 300_000);
});
