/**
 * Opening the SQLite store at start: create the data directory, check an existing file
 * (`[store] startup_check`: quick_check by default) on its own connection before the store writes
 * anything into it, open the store and claim the fencing epoch. Every failure is a
 * StoreStartupError that names the file and says what to do (startup-errors.ts). Used by the
 * store's worker thread and by the in-thread store alike.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { checkDatabaseFile, type CheckResult, type StartupCheck } from './sqlite-check.js';
import { SqliteTaskStore, type SqliteOptions } from './sqlite.js';
import { corruptFileError, explainStoreError } from './startup-errors.js';

export interface SqliteOpenOptions extends SqliteOptions {
  /** Default `quick`. */
  startupCheck?: StartupCheck;
}

export interface OpenedSqlite {
  store: SqliteTaskStore;
  /** The epoch claimed, or null when not asked to claim one. */
  epoch: number | null;
  /** The start-up check's result; null when it was off or the file is new. */
  check: CheckResult | null;
}

export function openSqliteStore(o: SqliteOpenOptions, claimEpoch: boolean): OpenedSqlite {
  const { startupCheck = 'quick', ...options } = o;
  let store: SqliteTaskStore | null = null;
  try {
    if (options.file !== ':memory:') mkdirSync(dirname(options.file), { recursive: true });
    const check = checkDatabaseFile(options.file, startupCheck);
    if (check && !check.ok) throw corruptFileError(options.file, check);
    store = new SqliteTaskStore(options);
    const epoch = claimEpoch ? store.claimEpoch() : null;
    return { store, epoch, check };
  } catch (e) {
    void store?.close();
    throw explainStoreError(options.file, e);
  }
}

/** The log line of a check that ran (fields and message), for the caller's logger. */
export function checkLogLine(check: CheckResult): [Record<string, unknown>, string] {
  return [{ check: check.mode === 'quick' ? 'quick_check' : 'integrity_check', ms: check.ms }, 'database file checked at start'];
}
