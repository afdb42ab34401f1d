/**
 * Ownership decides which slots this node may fire, and with which fencing token.
 * Standalone: LocalOwnership owns every slot with one constant token (the store's epoch).
 * Cluster: RedisOwnership (per-slot leases) implements the same interface.
 */
import { EventEmitter } from 'node:events';

/** 32-bit hash: FNV-1a plus a murmur3 finalizer (well mixed in every bit). Stable across versions. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Rendezvous (highest random weight) choice among candidates for a key: each key keeps its choice
 * while candidates come and go, and only keys of a removed candidate move. Ties go to the smaller.
 */
export function rendezvous(key: string, candidates: readonly string[]): string | null {
  let best: string | null = null;
  let bestW = -1;
  for (const c of candidates) {
    const w = hash32(`${key}\u0000${c}`);
    if (w > bestW || (w === bestW && best !== null && c < best)) {
      best = c;
      bestW = w;
    }
  }
  return best;
}

export interface SlotInfo {
  slot: number;
  owner: string | null;
  epoch: number | null;
}

export interface OwnershipEvents {
  /**
   * Slots this node now owns (with their tokens). The scheduler loads them. `periodic`: slots it
   * owned already, announced again as a safety net (see RedisOwnership's periodic refresh).
   */
  acquired: [slots: number[], periodic?: boolean];
  /** Slots this node no longer owns. The scheduler drops them at once. */
  lost: [slots: number[]];
}

export interface Ownership extends EventEmitter<OwnershipEvents> {
  readonly nodeId: string;
  readonly slotCount: number;
  start(): Promise<void>;
  /** Hands slots back (gracefully) and stops renewing. */
  stop(): Promise<void>;
  /** The fencing token for a slot this node owns, or null when it does not own it. */
  tokenFor(slot: number): number | null;
  /** Owned slots, ascending. */
  ownedSlots(): number[];
  /** Called by the scheduler when the store refused a token: the slot is lost. */
  reportFenced(slot: number): void;
  /**
   * True while this node holds the lease `token` on `slot`, valid by its own monotonic clock
   * (with the safety margin). A send, retry or deadline expiry for the slot starts only then.
   */
  holds(slot: number, token: number): boolean;
  /**
   * True while this node may act on the outcome of a delivery it started under the lease `token`
   * (trigger children, alert, auto-pause): it still holds that lease, or it handed it back on
   * purpose (a rebalance, a stop). False when the lease lapsed or was taken: a paused node leaves
   * those to the slot's new owner.
   */
  mayAct(slot: number, token: number): boolean;
  /**
   * The lease table shared with the delivery thread (src/cluster/lease-table.ts), or null when
   * every send may go (standalone: the check costs nothing).
   */
  leaseBuffer(): SharedArrayBuffer | null;
  /** True when this node is a working member (standalone: always, once started). */
  isMember(): boolean;
  /** For GET /xcron/cluster. */
  describe(): Promise<{ node: string; members: string[]; slots: SlotInfo[] }>;
}

/** Standalone ownership: every slot, one constant token. */
export class LocalOwnership extends EventEmitter<OwnershipEvents> implements Ownership {
  private owned = false;
  private fenced = false;
  private stopping: Promise<void> | null = null;

  constructor(
    readonly nodeId: string,
    readonly slotCount: number,
    private readonly token: number,
  ) {
    super();
  }

  start(): Promise<void> {
    this.stopping = null;
    this.owned = true;
    this.emit('acquired', this.ownedSlots());
    return Promise.resolve();
  }

  /** Gives every slot up. Safe to call twice: returns the same promise (until the next start). */
  stop(): Promise<void> {
    this.stopping ??= new Promise<void>((resolve) => {
      if (this.owned) {
        const slots = this.ownedSlots();
        this.owned = false;
        this.emit('lost', slots);
      }
      resolve();
    });
    return this.stopping;
  }

  tokenFor(_slot: number): number | null {
    return this.owned ? this.token : null;
  }

  ownedSlots(): number[] {
    return this.owned ? Array.from({ length: this.slotCount }, (_, i) => i) : [];
  }

  reportFenced(_slot: number): void {
    // Another process claimed the same SQLite file with a newer epoch: this one must stop firing.
    if (!this.owned) return;
    this.fenced = true;
    const slots = this.ownedSlots();
    this.owned = false;
    this.emit('lost', slots);
  }

  isMember(): boolean {
    return this.owned && !this.fenced;
  }

  holds(_slot: number, token: number): boolean {
    return this.owned && token === this.token;
  }

  mayAct(_slot: number, _token: number): boolean {
    return true;
  }

  leaseBuffer(): SharedArrayBuffer | null {
    return null;
  }

  describe(): Promise<{ node: string; members: string[]; slots: SlotInfo[] }> {
    return Promise.resolve({
      node: this.nodeId,
      members: [this.nodeId],
      slots: this.ownedSlots().map((slot) => ({ slot, owner: this.nodeId, epoch: this.token })),
    });
  }
}
