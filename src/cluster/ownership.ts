/**
 * Ownership decides which slots this node may fire, and with which fencing token.
 * Standalone: LocalOwnership owns every slot with one constant token (the store's epoch).
 * Cluster: RedisOwnership (per-slot leases) implements the same interface.
 */
import { EventEmitter } from 'node:events';

/** FNV-1a 32-bit hash of a task id, mod the slot count. Stable across nodes and versions. */
export function slotOf(taskId: string, slots: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < taskId.length; i++) {
    h ^= taskId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % slots;
}

export interface SlotInfo {
  slot: number;
  owner: string | null;
  epoch: number | null;
}

export interface OwnershipEvents {
  /** Slots this node now owns (with their tokens). The scheduler loads them. */
  acquired: [slots: number[]];
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
  /** True when this node is a working member (standalone: always, once started). */
  isMember(): boolean;
  /** For GET /xcron/cluster. */
  describe(): Promise<{ node: string; members: string[]; slots: SlotInfo[] }>;
}

/** Standalone ownership: every slot, one constant token. */
export class LocalOwnership extends EventEmitter<OwnershipEvents> implements Ownership {
  private owned = false;
  private fenced = false;

  constructor(
    readonly nodeId: string,
    readonly slotCount: number,
    private readonly token: number,
  ) {
    super();
  }

  start(): Promise<void> {
    this.owned = true;
    this.emit('acquired', this.ownedSlots());
    return Promise.resolve();
  }

  stop(): Promise<void> {
    if (this.owned) {
      const slots = this.ownedSlots();
      this.owned = false;
      this.emit('lost', slots);
    }
    return Promise.resolve();
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

  describe(): Promise<{ node: string; members: string[]; slots: SlotInfo[] }> {
    return Promise.resolve({
      node: this.nodeId,
      members: [this.nodeId],
      slots: this.ownedSlots().map((slot) => ({ slot, owner: this.nodeId, epoch: this.token })),
    });
  }
}
