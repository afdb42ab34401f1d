/**
 * Task export and import (`xcron_server export` / `xcron_server import`): how a user moves from
 * standalone (SQLite) to a cluster (Redis), or between clusters with different slot counts.
 *
 * The format is JSON Lines: one task per line, every field of the stored task (id, schedule,
 * callback, options, state, next_fire_time, run_count, …). Import keeps task ids, recomputes each
 * task's slot for the target's slot count, and skips ids the target already has, so it can be
 * re-run safely. Run history is not copied; stop the source gracefully first so that no fire is
 * left undelivered in its outbox (a graceful stop also undoes the fires committed ahead of their
 * due time, so those tasks are exported as not fired yet).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { SystemClock } from './clock/index.js';
import type { Config } from './config/index.js';
import { ConfigError } from './errors.js';
import { connectRedis, createRedisClient } from './redis/connection.js';
import { redactRedisUrl } from './redis/url.js';
import { RedisTaskStore } from './store/redis.js';
import { TaskService, type Notifier } from './service/index.js';
import { openSqliteStore } from './store/sqlite-open.js';
import type { TaskStore } from './store/types.js';
import { isObject, type Task } from './task/index.js';

/** Opens the store the config selects (no ownership, no scheduler): for export and import only. */
export async function openStore(cfg: Config, log: Logger): Promise<TaskStore> {
  if (cfg.cluster.redis_url === '') {
    // The same start-up check as the server (XCRON_STORE_STARTUP_CHECK=off exports what a damaged file still holds).
    return openSqliteStore({ file: resolve(cfg.data_dir, cfg.store.sqlite_file), synchronous: cfg.store.synchronous, startupCheck: cfg.store.startup_check }, false).store;
  }
  const client = createRedisClient({
    url: cfg.cluster.redis_url,
    password: cfg.cluster.redis_password,
    tls: cfg.cluster.redis_tls,
    cluster: cfg.cluster.redis_cluster,
    sentinelPassword: cfg.cluster.redis_sentinel_password,
    commandTimeoutMs: Math.max(10_000, cfg.cluster.replica_ack_timeout_ms + 1000),
    name: `xcron:${cfg.node_id}:transfer`,
    log,
  });
  await connectRedis(client, cfg.cluster.connect_timeout_ms, log, redactRedisUrl(cfg.cluster.redis_url));
  return new RedisTaskStore({ client, prefix: cfg.cluster.key_prefix, slots: cfg.cluster.slots, log, replicaAcks: { count: cfg.cluster.min_replica_acks, timeoutMs: cfg.cluster.replica_ack_timeout_ms } });
}

/** Writes every task as one JSON line. Returns the count. */
export async function exportTasks(store: TaskStore, out: Writable): Promise<number> {
  let after: string | null = null;
  let n = 0;
  for (;;) {
    const page: Task[] = await store.listTasks({ state: null, namePrefix: null, after, limit: 1000 });
    for (const t of page) {
      if (!out.write(`${JSON.stringify(t)}\n`)) await new Promise((r) => out.once('drain', r));
      n++;
    }
    if (page.length < 1000) break;
    after = page[page.length - 1]!.id;
  }
  return n;
}

const REQUIRED: readonly (keyof Task)[] = ['id', 'type', 'format', 'timezone', 'callback', 'state', 'create_time'];

/** Reads JSON lines and creates the tasks missing from the store (TaskService.importTask). */
export async function importTasks(service: TaskService, file: string): Promise<{ imported: number; skipped: number }> {
  const rl = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  let imported = 0;
  let skipped = 0;
  let line = 0;
  for await (const text of rl) {
    line++;
    if (text.trim() === '') continue;
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new ConfigError(`${file}:${line}: not valid JSON (${(e as Error).message})`);
    }
    if (!isObject(raw) || REQUIRED.some((k) => !(k in raw))) throw new ConfigError(`${file}:${line}: not an exported task (needs ${REQUIRED.join(', ')})`);
    // Skipped: the id is there already, or its idempotency key belongs to another task in the target.
    if ((await service.importTask(raw as unknown as Task)) === 'imported') imported++;
    else skipped++;
  }
  return { imported, skipped };
}

/** `xcron_server export|import …`: runs the command and returns the process exit code. */
export async function runTransfer(cmd: 'export' | 'import', file: string | undefined, cfg: Config, log: Logger): Promise<number> {
  const store = await openStore(cfg, log);
  try {
    if (cmd === 'export') {
      const out = file ? createWriteStream(file) : process.stdout;
      const n = await exportTasks(store, out);
      if (file) await new Promise<void>((r, j) => (out as ReturnType<typeof createWriteStream>).end((e?: Error | null) => (e ? j(e) : r())));
      process.stderr.write(`xcron: exported ${n} tasks from the ${store.kind} store${file ? ` to ${file}` : ''}\n`);
    } else {
      if (!file) throw new ConfigError('import needs a file: xcron_server import FILE [--config PATH]');
      // No scheduler runs here: nobody to notify (the nodes load imported tasks when they start).
      const notifier: Notifier = { taskChanged: () => undefined, taskRemoved: () => undefined, runQueued: () => undefined };
      const limits = { callbackBodyLimit: cfg.callback.body_limit, defaultTimezone: cfg.default_timezone, pastGraceMs: 1000 };
      const service = new TaskService({ store, notifier, clock: new SystemClock(), slots: cfg.cluster.slots, limits, nodeId: cfg.node_id });
      const r = await importTasks(service, file);
      process.stderr.write(`xcron: imported ${r.imported} tasks into the ${store.kind} store, skipped ${r.skipped} already there\n`);
    }
    return 0;
  } finally {
    await store.close();
  }
}
