/**
 * Moving from standalone to a cluster: `xcron_server export` from the SQLite store, `xcron_server
 * import` into Redis, then a cluster node serves and fires the imported tasks. Real processes only.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Receiver, header } from '../helpers/receiver.js';
import { RedisServer, stopAllRedis } from '../helpers/redis.js';
import { XcronServer, cleanupTempDirs, runToExit, stopAllServers, tempDir } from '../helpers/server.js';

afterEach(async () => {
  await stopAllServers();
});
afterAll(async () => {
  await stopAllRedis();
  cleanupTempDirs();
});

describe('export and import (standalone -> cluster)', () => {
  it('moves every task with its id, schedule and state, and the cluster fires them', async () => {
    const recv = await Receiver.start();
    try {
      const dir = tempDir('xcron-transfer-');
      const dataDir = join(dir, 'data');
      const a = await XcronServer.start({ cwd: dir, dataDir });
      const dueAt = Date.now() + 15_000;
      const oneShot = await a.client.mustCreate({ type: 2, format: String(dueAt), callback: { url: recv.url('/moved'), body: { order: 7 } } });
      const cron = await a.client.mustCreate({ type: 1, format: '0 1 * * *', timezone: 'Asia/Shanghai', name: 'settle', callback: { url: recv.url('/settle') } });
      const paused = await a.client.mustCreate({ type: 1, format: '@every 1h', paused: true, callback: { url: recv.url('/p') } });
      a.kill('SIGTERM');
      expect((await a.exited).code).toBe(0);

      const file = join(dir, 'tasks.jsonl');
      const exp = await runToExit(['export', '--out', file], { XCRON_DATA_DIR: dataDir }, dir);
      expect(exp.code, exp.stderr).toBe(0);
      expect(exp.stderr).toContain('exported 3 tasks');
      const lines = readFileSync(file, 'utf8').trim().split('\n');
      expect(lines).toHaveLength(3);
      expect(lines.map((l) => (JSON.parse(l) as { id: string }).id).sort()).toEqual([oneShot.task_id, cron.task_id, paused.task_id].sort());

      const redis = await RedisServer.start({ appendonly: true });
      const clusterEnv = { XCRON_CLUSTER_REDIS_URL: redis.url, XCRON_CLUSTER_SLOTS: '64', XCRON_CLUSTER_KEY_PREFIX: 'mig' };
      const imp = await runToExit(['import', file], clusterEnv, dir);
      expect(imp.code, imp.stderr).toBe(0);
      expect(imp.stderr).toContain('imported 3 tasks');
      // Re-running the import is safe: nothing is created twice.
      const again = await runToExit(['import', file], clusterEnv, dir);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toContain('imported 0 tasks');
      expect(again.stderr).toContain('skipped 3');

      const node = await XcronServer.start({ env: { ...clusterEnv, XCRON_NODE_ID: 'n1', XCRON_CLUSTER_LEASE_MS: '1000' } });
      const q = await node.client.mustQuery(cron.task_id);
      expect(q).toMatchObject({ task_id: cron.task_id, format: '0 1 * * *', timezone: 'Asia/Shanghai', name: 'settle', state: 'active', next_fire_time: cron.next_fire_time });
      expect((await node.client.mustQuery(paused.task_id)).state).toBe('paused');
      const req = await recv.waitForRequest((r) => r.url === '/moved', 60_000, 'the imported one-shot fires');
      expect(header(req, 'x-xcron-fire-id')).toBe(`${oneShot.task_id}:${dueAt}`);
      expect(JSON.parse(req.body)).toEqual({ order: 7 });
    } finally {
      await recv.close();
    }
  });

  it('import refuses a file that is not an export, naming the line', async () => {
    const dir = tempDir('xcron-transfer-');
    const file = join(dir, 'bad.jsonl');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(file, '{"id":"x"}\n');
    const r = await runToExit(['import', file], { XCRON_DATA_DIR: join(dir, 'data') }, dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('bad.jsonl:1');
  });
});
