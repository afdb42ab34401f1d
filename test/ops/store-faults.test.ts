/**
 * Store faults against the real built server: a COPY of a database file with the root pages of its
 * tasks and runs tables overwritten does not start (exit 1, a message naming the file and what to
 * do, no stack trace), while the original still starts; with the check switched off, the damaged
 * store starts but is never ready and answers creates with 503. And the other start-up faults an
 * operator meets (a path that is not a directory, a directory in place of the file, a file that is
 * not a database, a file locked by another process) each get their own explanation.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { copyDatabase, zeroRootPages } from '../helpers/corrupt.js';
import { countRows } from '../helpers/db.js';
import { cleanupTempDirs, stopAllServers, tempDir, XcronServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

const STACK = /\n\s+at /;

afterAll(async () => {
  await stopAllServers();
  cleanupTempDirs();
});

/** Starts a server that is expected to refuse to start; returns its exit and its stderr. */
async function failedStart(env: Record<string, string>, dataDir: string): Promise<{ code: number | null; stderr: string; server: XcronServer }> {
  const server = await XcronServer.start({ dataDir, env, waitHealthy: false });
  const exit = await server.waitExit(60_000);
  return { code: exit.code, stderr: server.stderr, server };
}

/** The message must name the file, say what is wrong, and carry no stack trace. */
function expectExplained(stderr: string, file: string, what: RegExp): void {
  expect(stderr).toMatch(/^xcron: failed to start: /);
  expect(stderr).toContain(file);
  expect(stderr).toMatch(what);
  expect(stderr).not.toMatch(STACK);
}

describe('a damaged copy of a database file', () => {
  let original: XcronServer;
  let damagedDir: string;
  let damagedFile: string;
  let ids: string[] = [];

  it('setup: a server with tasks and runs stops cleanly; a copy of its file gets zeroed root pages', async () => {
    original = await XcronServer.start();
    ids = [];
    for (let i = 0; i < 5; i++) ids.push((await original.client.mustCreate({ type: 1, format: '0 0 1 1 *', callback: { url: `http://127.0.0.1:9/faults-${i}` } })).task_id);
    for (const id of ids.slice(0, 3)) {
      const r = await fetch(`${original.baseUrl}/xcron/triggerTask`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ task_id: id }) });
      expect(r.status).toBe(200);
    }
    await waitUntil(() => countRows(original.dbFile).runs, (n) => n >= 3, 30_000, 'three run records');
    original.kill('SIGTERM');
    expect((await original.waitExit(30_000)).code).toBe(0);
    damagedDir = join(tempDir('xcron-damaged-'), 'data');
    mkdirSync(damagedDir);
    damagedFile = join(damagedDir, 'xcron.db');
    copyDatabase(original.dbFile, damagedFile);
    expect(zeroRootPages(damagedFile, ['tasks', 'runs'])).toHaveLength(2);
  }, 120_000);

  for (const workerThread of ['true', 'false']) {
    it(`does not start (store thread: ${workerThread}): exit 1, the file named, what to do, no stack`, async () => {
      const r = await failedStart({ XCRON_STORE_WORKER_THREAD: workerThread }, damagedDir);
      expect(r.code).toBe(1);
      expectExplained(r.stderr, damagedFile, /is corrupt \(PRAGMA quick_check: /);
      expect(r.stderr).toMatch(/restore .* from a backup/);
      expect(r.server.logs().some((l) => typeof l.msg === 'string' && l.msg.startsWith('xcron listening'))).toBe(false);
    }, 90_000);
  }

  it('does not start with startup_check = full either', async () => {
    const r = await failedStart({ XCRON_STORE_STARTUP_CHECK: 'full' }, damagedDir);
    expect(r.code).toBe(1);
    expectExplained(r.stderr, damagedFile, /is corrupt \(PRAGMA integrity_check: /);
  }, 90_000);

  it('with startup_check = off it starts, but /readyz answers 503 and createTask never 200', async () => {
    const s = await XcronServer.start({ dataDir: damagedDir, env: { XCRON_STORE_STARTUP_CHECK: 'off' } });
    const readyz = await fetch(`${s.baseUrl}/readyz`);
    const ready = { status: readyz.status, body: (await readyz.json()) as { code: number } };
    expect(ready.status).toBe(503);
    expect(ready.body.code).toBe(1016);
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${s.baseUrl}/xcron/createTask`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 1, format: '* * * * *', callback: { url: 'http://127.0.0.1:9/x' } }) });
      const body = (await r.json()) as { code: number; message: string };
      expect(r.status).toBe(503);
      expect(body.code).toBe(1004);
      expect(body.message).toMatch(/database file is corrupt/);
    }
    const list = await fetch(`${s.baseUrl}/xcron/listTasks`);
    expect(list.status).toBe(503);
    expect((await fetch(`${s.baseUrl}/readyz`)).status).toBe(503);
    expect((await fetch(`${s.baseUrl}/healthz`)).status).toBe(200); // alive, not ready
    await s.stop();
  }, 90_000);

  it('the original file still starts, passes its check and holds every task', async () => {
    const s = await original.restart();
    const checked = await s.waitForLog((l) => l.msg === 'database file checked at start', 10_000, 'the check log line');
    expect(checked.check).toBe('quick_check');
    expect(typeof checked.ms).toBe('number');
    expect((await fetch(`${s.baseUrl}/readyz`)).status).toBe(200);
    for (const id of ids) expect((await s.client.mustQuery(id)).task_id).toBe(id);
    await s.stop();
  }, 90_000);
});

describe('start-up errors about the store name the file and say what to do', () => {
  it('a data_dir below a regular file', async () => {
    const root = tempDir('xcron-notdir-');
    writeFileSync(join(root, 'afile'), 'x');
    const dataDir = join(root, 'afile', 'data');
    const r = await failedStart({}, dataDir);
    expect(r.code).toBe(1);
    expectExplained(r.stderr, join(dataDir, 'xcron.db'), new RegExp(`${join(root, 'afile')} is not a directory`));
    expect(r.stderr).toMatch(/data_dir \(XCRON_DATA_DIR\)/);
  }, 60_000);

  it('a directory where the database file should be', async () => {
    const dataDir = join(tempDir('xcron-isdir-'), 'data');
    mkdirSync(join(dataDir, 'xcron.db'), { recursive: true });
    const r = await failedStart({}, dataDir);
    expect(r.code).toBe(1);
    expectExplained(r.stderr, join(dataDir, 'xcron.db'), /is a directory, not a file/);
  }, 60_000);

  it('a file that is not an SQLite database', async () => {
    const dataDir = join(tempDir('xcron-notadb-'), 'data');
    mkdirSync(dataDir);
    writeFileSync(join(dataDir, 'xcron.db'), 'these are not the bytes you are looking for\n'.repeat(200));
    const r = await failedStart({}, dataDir);
    expect(r.code).toBe(1);
    expectExplained(r.stderr, join(dataDir, 'xcron.db'), /not an SQLite database/);
  }, 60_000);

  it('a file locked by another process', async () => {
    const dataDir = join(tempDir('xcron-locked-'), 'data');
    mkdirSync(dataDir);
    const file = join(dataDir, 'xcron.db');
    const locker = new Database(file);
    try {
      locker.pragma('journal_mode = WAL');
      locker.exec('CREATE TABLE held (x)');
      locker.pragma('locking_mode = EXCLUSIVE');
      locker.exec('BEGIN IMMEDIATE; INSERT INTO held VALUES (1); COMMIT;'); // holds the exclusive lock from now on
      const r = await failedStart({}, dataDir);
      expect(r.code).toBe(1);
      expectExplained(r.stderr, file, /locked by another process/);
      expect(r.stderr).toContain(`fuser ${file}`);
    } finally {
      locker.close();
    }
  }, 60_000);
});
