/**
 * The two example workers of docs/async.md, run as they are printed: the Node one with
 * `node`, the Python one with `python3`, each as a real process on a free port, against the real
 * built server. Each must answer 202, append its log lines and report SUCCESS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.js';
import { REPO_ROOT, XcronServer, cleanupTempDirs, ensureBuilt, stopAllServers, takeStarted, tempDir } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';
import { WAIT, create, runLog, trigger, waitRun } from './common.js';

const DOC_FILE = 'docs/async.md';
const DOC = readFileSync(join(REPO_ROOT, DOC_FILE), 'utf8');

/** The first fenced block of `lang` after the Markdown heading (any level) whose text starts with `heading`. */
function codeBlock(heading: string, lang: string): string {
  const h = new RegExp('^#+ ' + heading.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'm').exec(DOC);
  if (!h) throw new Error(`${DOC_FILE}: no heading ${heading}`);
  const m = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(DOC.slice(h.index));
  if (!m) throw new Error(`${DOC_FILE}: no \`\`\`${lang} block after ${heading}`);
  return m[1]!;
}

const procs = new Set<ChildProcess>();
let output = '';

beforeAll(() => {
  ensureBuilt();
}, 600_000);

afterEach(async (ctx) => {
  const servers = takeStarted();
  if (ctx.task.result?.state === 'fail') {
    for (const s of servers) console.log(s.tail(40));
    console.log(`worker output:\n${output}`);
  }
  output = '';
  for (const p of procs) {
    p.kill('SIGKILL');
    if (p.exitCode === null && p.signalCode === null) await new Promise((r) => p.once('exit', r));
  }
  procs.clear();
  await stopAllServers();
});

afterAll(() => {
  cleanupTempDirs();
});

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Starts the example worker and runs one async task through it. */
async function runExample(cmd: string, file: string, code: string): Promise<void> {
  const srv = await XcronServer.start();
  const dir = tempDir('xcron-doc-worker-');
  const path = join(dir, file);
  writeFileSync(path, code);
  const port = await freePort();
  const child = spawn(cmd, [path], { cwd: dir, env: { ...process.env, XCRON_URL: srv.baseUrl, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  procs.add(child);
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  await waitUntil(
    async () => {
      if (child.exitCode !== null) throw new Error(`${cmd} ${file} exited ${child.exitCode}: ${output}`);
      return portOpen(port);
    },
    (up) => up,
    WAIT,
    `the ${file} worker listening on ${port}`,
  );

  const id = await create(srv.baseUrl, { type: 1, format: '0 0 1 1 *', name: 'doc-example', callback: { url: `http://127.0.0.1:${port}/settle`, body: { ledger: 'main' } } });
  const runId = await trigger(srv.baseUrl, id);
  // The worker answers 202 (the run awaits its report), logs, works, and reports.
  const run = await waitRun(srv.baseUrl, id, runId, (r) => r.status === 'SUCCESS' || r.status === 'FAIL', 'reported by the example worker');
  expect(run).toMatchObject({ status: 'SUCCESS', http_status: 202, message: '42 rows', output: { rows: 42 } });
  const log = (await runLog(srv.baseUrl, runId)).body.data;
  expect(log.finished).toBe(true);
  expect(log.lines.map((l) => l.seq)).toEqual([1, 2]);
  expect(log.lines[0]!.line).toMatch(/^started: \{"ledger": ?"main"\}$/);
  expect(log.lines[1]!.line).toBe('42 rows settled');
}

describe('the example workers of docs/async.md', () => {
  it('the Node worker (node:http + fetch) answers 202, appends its log lines and reports SUCCESS', async () => {
    await runExample(process.execPath, 'worker.mjs', codeBlock('A worker in Node', 'js'));
  });

  it('the Python worker (http.server + urllib) answers 202, appends its log lines and reports SUCCESS', async () => {
    await runExample('python3', 'worker.py', codeBlock('A worker in Python', 'python'));
  });
});
