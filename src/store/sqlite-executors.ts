/**
 * The executor registry on SQLite (table `executors`, migration 8): one row per (group, address),
 * upserted by each heartbeat. See src/store/executors.ts for the contract.
 */
import type Database from 'better-sqlite3';
import { EXPIRED_KEEP_MS, type ExecutorInstance, type ExecutorRegistration } from './executors.js';

interface ExecutorRow {
  grp: string;
  address: string;
  ttl_ms: number;
  meta: string | null;
  last_heartbeat: number;
  registered_at: number;
}

const toInstance = (r: ExecutorRow): ExecutorInstance => ({
  group: r.grp,
  address: r.address,
  ttl_ms: r.ttl_ms,
  meta: r.meta === null ? null : (JSON.parse(r.meta) as Record<string, unknown>),
  last_heartbeat: r.last_heartbeat,
  registered_at: r.registered_at,
});

/** The registry's statements and calls (synchronous: the store runs them in its own thread). */
export class SqliteExecutors {
  private readonly st;

  constructor(private readonly db: Database.Database) {
    this.st = {
      get: db.prepare('SELECT * FROM executors WHERE grp = ? AND address = ?'),
      upsert: db.prepare(
        `INSERT INTO executors (grp, address, ttl_ms, meta, last_heartbeat, registered_at) VALUES (?,?,?,?,?,?)
         ON CONFLICT (grp, address) DO UPDATE SET ttl_ms = excluded.ttl_ms, meta = excluded.meta, last_heartbeat = excluded.last_heartbeat`,
      ),
      remove: db.prepare('DELETE FROM executors WHERE grp = ? AND address = ?'),
      purge: db.prepare('DELETE FROM executors WHERE last_heartbeat + ttl_ms < ?'),
      live: db.prepare('SELECT * FROM executors WHERE grp = ? AND last_heartbeat + ttl_ms > ? ORDER BY address'),
      all: db.prepare('SELECT * FROM executors ORDER BY grp, address'),
    };
  }

  register(r: ExecutorRegistration): { instance: ExecutorInstance; created: boolean } {
    return this.db.transaction(() => {
      this.st.purge.run(r.now - EXPIRED_KEEP_MS);
      const old = this.st.get.get(r.group, r.address) as ExecutorRow | undefined;
      const created = old === undefined;
      const registered_at = old?.registered_at ?? r.now;
      this.st.upsert.run(r.group, r.address, r.ttl_ms, r.meta === null ? null : JSON.stringify(r.meta), r.now, registered_at);
      return { instance: { group: r.group, address: r.address, ttl_ms: r.ttl_ms, meta: r.meta, last_heartbeat: r.now, registered_at }, created };
    })();
  }

  unregister(group: string, address: string): boolean {
    return this.st.remove.run(group, address).changes > 0;
  }

  live(group: string, now: number): ExecutorInstance[] {
    return (this.st.live.all(group, now) as ExecutorRow[]).map(toInstance);
  }

  list(now: number): ExecutorInstance[] {
    this.st.purge.run(now - EXPIRED_KEEP_MS);
    return (this.st.all.all() as ExecutorRow[]).map(toInstance);
  }
}
