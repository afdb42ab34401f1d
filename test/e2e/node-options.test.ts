/**
 * The server started as `node <options> dist/src/main.js`, as a Dockerfile's CMD or a process manager
 * would start it with a heap size. Node refuses a worker thread whose execArgv holds per-process
 * options, and the store and delivery threads used to pass the process's options through: the
 * server then failed at startup. Real processes only.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Receiver, header } from '../helpers/receiver.js';
import { XcronServer, cleanupTempDirs, stopAllServers } from '../helpers/server.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { workerExecArgv } from '../../src/worker-args.js';
import { LAUNCHER, REPO_ROOT } from '../helpers/server.js';

afterEach(async () => {
  await stopAllServers();
});
afterAll(() => {
  cleanupTempDirs();
});

describe('node options on the command line', () => {
  it('starts with V8 heap options and fires through its store and delivery threads', async () => {
    const recv = await Receiver.start();
    try {
      const s = await XcronServer.start({ nodeArgs: ['--max-old-space-size=512', '--max-semi-space-size=32', '--enable-source-maps'] });
      expect(s.running).toBe(true);
      const dueAt = Date.now() + 1500;
      const t = await s.client.mustCreate({ type: 2, format: String(dueAt), callback: { url: recv.url('/heap'), body: { ok: 1 } } });
      const req = await recv.waitForRequest((r) => r.path === '/heap', 30_000, 'the one-shot fires');
      expect(header(req, 'x-xcron-fire-id')).toBe(`${t.task_id}:${dueAt}`);
      const q = await s.client.mustQuery(t.task_id);
      expect(q.task_id).toBe(t.task_id);
    } finally {
      await recv.close();
    }
  });
});

describe('the node flags the server ships with', () => {
  it('./xcron_server and the Dockerfile run node with the same flags (the benches read them from the launcher)', () => {
    const launcher = /^exec node (.*?) "\$here\/dist\/src\/main\.js"/m.exec(readFileSync(LAUNCHER, 'utf8'));
    expect(launcher, 'the launcher has an exec node line').not.toBeNull();
    const launcherFlags = launcher![1]!.split(/\s+/);
    expect(launcherFlags).toContain('--enable-source-maps');
    const cmd = /^CMD (\[.*\])$/m.exec(readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8'));
    expect(cmd, 'the Dockerfile has an exec-form CMD').not.toBeNull();
    const argv = JSON.parse(cmd![1]!) as string[];
    expect(argv[0]).toBe('node');
    expect(argv[argv.length - 1]).toBe('dist/src/main.js');
    expect(argv.slice(1, -1)).toEqual(launcherFlags);
  });
});

describe('workerExecArgv', () => {
  it('gives no execArgv (the thread inherits the process options) unless profiling', () => {
    expect(workerExecArgv('store-worker', [])).toBeUndefined();
    expect(workerExecArgv('store-worker', ['--max-old-space-size=512', '--enable-source-maps'])).toBeUndefined();
  });
  it('under --cpu-prof, passes only the profiling options and names the thread profile', () => {
    expect(workerExecArgv('delivery-worker', ['--max-old-space-size=512', '--cpu-prof', '--cpu-prof-dir=/tmp/p', '--cpu-prof-name=burst.cpuprofile'])).toEqual([
      '--cpu-prof',
      '--cpu-prof-dir=/tmp/p',
      '--cpu-prof-name=burst.delivery-worker.cpuprofile',
    ]);
    expect(workerExecArgv('store-worker', ['--cpu-prof', '--cpu-prof-name=x'])).toEqual(['--cpu-prof', '--cpu-prof-name=x.store-worker.cpuprofile']);
  });
});
