/**
 * WAL checkpoints off the event loop: a worker thread with its own connection to the SQLite file
 * copies the WAL into the database (PRAGMA wal_checkpoint(PASSIVE)) every few milliseconds, so the
 * serving thread's commits only append to the WAL and never stall on a checkpoint.
 * Started by SqliteTaskStore when `checkpointInWorker` is set (the server does; tests need not).
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

interface CheckpointerData {
  file: string;
  intervalMs: number;
}

const { file, intervalMs } = workerData as CheckpointerData;
const db = new Database(file);
db.pragma('busy_timeout = 1000');
let stopped = false;

const tick = (): void => {
  if (stopped) return;
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // busy or closed: try again on the next tick
  }
  setTimeout(tick, intervalMs);
};
setTimeout(tick, intervalMs);

parentPort?.on('message', (m: unknown) => {
  if (m === 'stop') {
    stopped = true;
    try {
      db.pragma('wal_checkpoint(PASSIVE)');
      db.close();
    } finally {
      parentPort?.postMessage('stopped');
    }
  }
});
