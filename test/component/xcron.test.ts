/**
 * createXcron (src/xcron.ts): the library handle that src/main.ts wraps. A node built from a config
 * starts, listens, fires to a real receiver and stops when its `await using` scope ends; stop()
 * and every component's close()/stop() can be called twice and return the same promise; and a
 * shutdown step that throws or hangs does not keep the later steps from running.
 */
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { SystemClock } from '../../src/clock/index.js';
import { LocalOwnership } from '../../src/cluster/index.js';
import { Delivery } from '../../src/delivery/index.js';
import { ThreadedDelivery } from '../../src/delivery/threaded.js';
import { StoreUnavailableError } from '../../src/errors.js';
import { SqliteTaskStore } from '../../src/store/sqlite.js';
import { ThreadedSqliteStore } from '../../src/store/sqlite-thread.js';
import { createXcron, type Xcron } from '../../src/xcron.js';
import { Receiver } from '../helpers/receiver.js';
import { RedisServer } from '../helpers/redis.js';
import { testConfig } from '../helpers/xcron.js';
import { silentLog as log, tempDir } from './fixtures.js';

const STORE_WORKER = new URL('../../dist/src/store/sqlite-worker.js', import.meta.url);
const DELIVERY_WORKER = new URL('../../dist/src/delivery/worker.js', import.meta.url);

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function dataDir(): string {
  const t = tempDir('xcron-lib-');
  cleanups.push(() => t.remove());
  return t.dir;
}

/** Both calls return the very same promise, and it settles. */
async function expectSamePromise(call: () => Promise<void>): Promise<void> {
  const first = call();
  const second = call();
  expect(second).toBe(first);
  await first;
  expect(call()).toBe(first);
}

describe('createXcron', () => {
  it('await using: a node from a config listens, fires a task to a real receiver, and is stopped when the scope ends', async () => {
    const rx = await Receiver.start();
    cleanups.push(() => rx.close());
    const dir = dataDir();
    let node: Xcron;
    let port: number;
    {
      await using x = await createXcron(testConfig(dir, { scheduler: { scan_interval_ms: 200, lookahead_ms: 5000 } }), { log, processMetrics: false });
      node = x;
      await x.start();
      ({ port } = await x.listen());
      expect(x.port).toBe(port);
      const res = await fetch(`http://127.0.0.1:${port}/xcron/createTask`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ type: 1, format: '* * * * * *', callback: { url: rx.url('/lib') } }),
      });
      const body = (await res.json()) as { code: number; data: { task_id: string } };
      expect(body.code).toBe(0);
      const [req] = await rx.waitFor((r) => r.some((q) => q.path === '/lib'), 10_000, 'the first callback');
      expect(req!.headers['x-xcron-task-id']).toBe(body.data.task_id);
    }
    // The scope ended: the node ran its shutdown.
    expect(node.stopped?.map((s) => s.outcome).every((o) => o === 'ok')).toBe(true);
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
    await expect(node.store.get('anything')).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it('start() and stop() return the same promise when called again; [Symbol.asyncDispose] is stop()', async () => {
    const x = await createXcron(testConfig(dataDir()), { log, processMetrics: false });
    const s1 = x.start();
    expect(x.start()).toBe(s1);
    await s1;
    const stop = x.stop();
    expect(x.stop()).toBe(stop);
    expect(x[Symbol.asyncDispose]()).toBe(stop);
    await stop;
    await expect(x.start()).rejects.toThrow(/after stop/);
  });

  it('stop() before start() closes what was opened', async () => {
    const x = await createXcron(testConfig(dataDir()), { log, processMetrics: false });
    await x.stop();
    expect(x.stopped?.every((s) => s.outcome === 'ok')).toBe(true);
    await expect(x.store.get('anything')).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it('a shutdown step that throws and one that hangs do not keep the later steps from running', async () => {
    const x = await createXcron(testConfig(dataDir()), { log, processMetrics: false, shutdownStepTimeoutMs: 300 });
    await x.start();
    await x.listen({ port: 0 });
    // The history flush fails and the lease release never answers (a hung Redis, say).
    x.scheduler.flush = () => Promise.reject(new Error('history flush failed'));
    let released = false;
    x.ownership.stop = () => new Promise<void>(() => undefined);
    const realDeliveryClose = x.delivery.close.bind(x.delivery);
    x.delivery.close = () => {
      released = true;
      return realDeliveryClose();
    };
    await x.stop();
    expect(x.stopped?.map((s) => [s.name, s.outcome])).toEqual([
      ['start', 'ok'],
      ['http', 'ok'],
      ['results', 'ok'],
      ['timers', 'ok'],
      ['drain', 'ok'],
      ['history', 'failed'],
      ['leases', 'timed_out'],
      ['delivery', 'ok'],
      ['metrics', 'ok'],
      ['store', 'ok'],
      ['redis', 'ok'],
    ]);
    expect(released).toBe(true);
    // The steps after the failures ran: the store is closed.
    await expect(x.store.get('anything')).rejects.toBeInstanceOf(StoreUnavailableError);
  });
});

describe('close() and stop() can be called twice and return the same promise', () => {
  it('SqliteTaskStore, LocalOwnership, Delivery and Scheduler', async () => {
    const store = new SqliteTaskStore({ file: join(dataDir(), 'x.db'), synchronous: 'normal' });
    await expectSamePromise(() => store.close());

    const own = new LocalOwnership('n', 4, 1);
    await own.start();
    const lost: number[][] = [];
    own.on('lost', (s) => lost.push(s));
    await expectSamePromise(() => own.stop());
    expect(lost).toHaveLength(1); // the slots were given up once
    await own.start(); // a new start: a new stop
    const again = own.stop();
    await again;
    expect(lost).toHaveLength(2);

    const d = new Delivery({ clock: new SystemClock(), log, userAgent: 't', globalConcurrency: 4, perOriginConcurrency: 4, maxResponseBytes: 1024, signingSecrets: [] });
    await expectSamePromise(() => d.close());

    const x = await createXcron(testConfig(dataDir()), { log, processMetrics: false });
    cleanups.push(() => x.stop());
    await x.start();
    await expectSamePromise(() => x.scheduler.stop());
  });

  it('ThreadedSqliteStore and ThreadedDelivery (the worker threads, from dist/)', async () => {
    for (const u of [STORE_WORKER, DELIVERY_WORKER]) {
      if (!existsSync(fileURLToPath(u))) throw new Error(`${fileURLToPath(u)} is missing: run bash build.sh first`);
    }
    const store = await ThreadedSqliteStore.open({ file: join(dataDir(), 'x.db'), synchronous: 'normal' }, log, STORE_WORKER);
    await expectSamePromise(() => store.close());
    await expect(store.get('x')).rejects.toBeInstanceOf(StoreUnavailableError);

    const d = new ThreadedDelivery({ userAgent: 't', globalConcurrency: 4, perOriginConcurrency: 4, maxResponseBytes: 1024, signingSecrets: [], logLevel: 'silent', nodeId: 'n', log, workerUrl: DELIVERY_WORKER });
    await expectSamePromise(() => d.close());
  });

  it('cluster mode: the node, its Redis store, ownership, change feed and cluster connections', async () => {
    const redis = await RedisServer.start();
    cleanups.push(() => redis.stop());
    const x = await createXcron(testConfig(dataDir(), { cluster: { redis_url: redis.url, key_prefix: `lib-${process.pid}`, slots: 16, lease_ms: 1000 } }), { log, processMetrics: false });
    await x.start();
    const cluster = x.cluster!;
    expect(cluster).not.toBeNull();
    await expectSamePromise(() => x.stop());
    expect(x.stopped?.map((s) => [s.name, s.outcome]).filter(([, o]) => o !== 'ok')).toEqual([]);
    // Each part again, after the node closed it: the same promise it returned then.
    await expectSamePromise(() => cluster.close());
    await expectSamePromise(() => cluster.notifier.close());
    await expectSamePromise(() => cluster.store.close());
    await expectSamePromise(() => cluster.ownership.stop());
  });
});
