/**
 * The slot leases this node holds, with the local monotonic time until which each is surely still
 * valid, kept in step with the LeaseTable the delivery thread reads. A lease counts as held only
 * until that time: asked later, or when the watchdog goes off, it is dropped and reported lost, so
 * a node frozen past its lease (SIGSTOP, a long GC pause) never fires with a token it cannot prove.
 * RedisOwnership (src/cluster/redis.ts) takes, renews and hands back the leases.
 */
import type { Logger } from 'pino';
import { LeaseTable } from './lease-table.js';

export interface Lease {
  token: number;
  /** Local monotonic time until which the lease is surely still held. */
  validUntil: number;
}

export interface HeldLeasesOptions {
  slots: number;
  /** Monotonic milliseconds. */
  now: () => number;
  log: Logger;
  /** Told of every slot this book drops (lost or handed back). */
  lost: (slots: number[]) => void;
}

export class HeldLeases {
  private readonly owned = new Map<number, Lease>();
  /** The leases as the delivery thread sees them (kept in step with `owned`). */
  readonly table: LeaseTable;
  private watchdog: NodeJS.Timeout | null = null;

  constructor(private readonly o: HeldLeasesOptions) {
    this.table = new LeaseTable(o.slots, o.now);
  }

  get size(): number {
    return this.owned.size;
  }

  get(slot: number): Lease | undefined {
    return this.owned.get(slot);
  }

  has(slot: number): boolean {
    return this.owned.has(slot);
  }

  /** The leases held, as [slot, lease] pairs (a copy). */
  entries(): [number, Lease][] {
    return [...this.owned];
  }

  /** The slots held, in order. */
  slots(): number[] {
    return [...this.owned.keys()].sort((a, b) => a - b);
  }

  /** Takes or renews a lease here and in the shared table. */
  keep(slot: number, l: Lease): void {
    this.owned.set(slot, l);
    this.table.set(slot, l.token, l.validUntil);
  }

  /** Ends a lease here and in the shared table (`handedBack`: given up on purpose). */
  forget(slot: number, handedBack = false): boolean {
    this.table.drop(slot, handedBack);
    return this.owned.delete(slot);
  }

  /** The token of the lease on `slot` while it is surely still valid, else null. */
  tokenFor(slot: number): number | null {
    const l = this.owned.get(slot);
    if (!l) return null;
    if (this.o.now() > l.validUntil) {
      this.expireStale();
      return null;
    }
    return l.token;
  }

  /** The store refused the slot's fencing token: the slot is lost. */
  reportFenced(slot: number): void {
    if (!this.forget(slot)) return;
    this.o.log.warn({ slot }, 'fencing token refused by the store: slot lost');
    this.o.lost([slot]);
  }

  /** Drops every lease (`handedBack`: given up on purpose) and reports the slots lost. */
  dropAll(reason: string | null, handedBack = false): void {
    if (this.owned.size === 0) return;
    const slots = this.slots();
    for (const s of slots) this.forget(s, handedBack);
    if (reason) this.o.log.debug({ reason, slots: slots.length }, 'dropping all slots');
    this.o.lost(slots);
  }

  /** Drops the slots whose lease may have expired (no successful renewal in time). */
  expireStale(): void {
    const now = this.o.now();
    const stale: number[] = [];
    for (const [s, l] of this.owned) if (now > l.validUntil) stale.push(s);
    if (stale.length === 0) return;
    for (const s of stale) this.forget(s);
    this.o.log.warn({ slots: stale.length }, 'leases not renewed in time (process paused or Redis slow): not firing those slots');
    this.o.lost(stale);
  }

  /** Sets the watchdog to go off when the first lease's validity ends (none held, or `stopped`: none). */
  armWatchdog(stopped: boolean): void {
    this.disarmWatchdog();
    if (this.owned.size === 0 || stopped) return;
    let first = Infinity;
    for (const l of this.owned.values()) first = Math.min(first, l.validUntil);
    this.watchdog = setTimeout(() => {
      this.watchdog = null;
      this.expireStale();
    }, Math.max(0, first - this.o.now()) + 1);
    this.watchdog.unref();
  }

  disarmWatchdog(): void {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = null;
  }
}
