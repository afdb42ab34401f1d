/**
 * The SQLite store's worker thread: owns the database connection and runs every store call that
 * `ThreadedSqliteStore` (src/store/sqlite-thread.ts) forwards, in arrival order. Commits, WAL
 * checkpoints and history writes then never block the main event loop, which keeps the timers
 * and the API.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { toWire } from '../errors.js';
import type { SqliteTaskStore } from './sqlite.js';
import { openSqliteStore } from './sqlite-open.js';
import type { Task } from '../task/index.js';
import type { CreatedReply, StoreCall, StoreReply, StoreWorkerData } from './sqlite-thread.js';
import { EXECUTOR_METHODS, STORE_METHODS } from './sqlite-thread.js';

const port = parentPort;
if (!port) throw new Error('src/store/sqlite-worker.ts runs only as a worker thread');
const data = workerData as StoreWorkerData;

let store: SqliteTaskStore;
try {
  const opened = openSqliteStore(data.options, data.claimEpoch);
  store = opened.store;
  port.postMessage({ t: 'ready', epoch: opened.epoch, check: opened.check } satisfies StoreReply);
} catch (e) {
  port.postMessage({ t: 'failed', error: toWire(e) } satisfies StoreReply);
  process.exit(1);
}

/** createRows: the creates ThreadedSqliteStore batches (flat rows; not a TaskStore method). */
const methods = new Set<string>([...STORE_METHODS, ...EXECUTOR_METHODS, 'createRows']);
const call = store as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;

port.on('message', (m: StoreCall) => {
  if (!methods.has(m.m)) {
    port.postMessage({ t: 'r', id: m.id, error: { name: 'Error', message: `unknown store method ${m.m}` } } satisfies StoreReply);
    return;
  }
  let p: Promise<unknown>;
  try {
    p = call[m.m]!.apply(store, m.a);
  } catch (e) {
    p = Promise.reject(e as Error);
  }
  if (m.m === 'createRows') p = p.then((rows) => (rows as (Task | null | Error)[]).map((r): CreatedReply => (r === null ? 1 : r instanceof Error ? { e: toWire(r) } : { t: r })));
  p.then(
    (value) => port.postMessage({ t: 'r', id: m.id, value } satisfies StoreReply),
    (e: unknown) => port.postMessage({ t: 'r', id: m.id, error: toWire(e) } satisfies StoreReply),
  );
  if (m.m === 'close') {
    void p.finally(() => setImmediate(() => port.close()));
  }
});
