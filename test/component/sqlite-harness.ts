/**
 * The store-contract harness for SQLite stores on a temp file: `open(file)` opens the store under
 * test and returns it with the fencing epoch it claimed; `invalidate` simulates another process
 * opening the same file and claiming a newer epoch.
 */
import { join } from 'node:path';
import { SqliteTaskStore } from '../../src/store/sqlite.js';
import type { TaskStore } from '../../src/store/types.js';
import { tempDir } from './fixtures.js';
import type { StoreHarness } from './store-contract.js';

export async function sqliteHarness(prefix: string, open: (file: string) => Promise<{ store: TaskStore; epoch: number }>): Promise<StoreHarness> {
  const tmp = tempDir(prefix);
  const file = join(tmp.dir, 'xcron.db');
  const { store, epoch } = await open(file);
  let current = epoch;
  const others: SqliteTaskStore[] = [];
  return {
    store,
    token: () => current,
    invalidate: () => {
      // another process opens the same file and claims a newer epoch
      const other = new SqliteTaskStore({ file, synchronous: 'normal' });
      others.push(other);
      current = other.claimEpoch();
      return Promise.resolve();
    },
    cleanup: async () => {
      await store.close();
      for (const o of others) await o.close();
      tmp.remove();
    },
  };
}
