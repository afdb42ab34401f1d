/**
 * The leases this node holds, shared with the delivery thread: a SharedArrayBuffer with, per slot,
 * the fencing token of the lease and the monotonic time (src/clock/mono.ts) until which the lease
 * is surely still held. The main thread (RedisOwnership) writes it whenever a lease is taken,
 * renewed, handed back or lost; the delivery thread reads it right before it writes a request
 * (`LeaseGate.holds`), so a node that was paused past its lease never starts a send for a slot
 * another node may own by now.
 *
 * Each entry is two float64 values written one at a time. A lease is taken by writing the token
 * first and the deadline second, and dropped by writing the deadline first: a reader that sees a
 * deadline in the future also sees that lease's token. (Aligned 8-byte accesses are not torn on
 * the platforms Node runs on.)
 *
 * A third value per slot remembers the token of a lease this node handed back on purpose (a
 * rebalance or a stop), as opposed to one that lapsed or was taken: the outcomes of deliveries
 * started under it are still this node's to act on (children, alerts, auto-pause).
 */
import { monoMs } from '../clock/mono.js';

const STRIDE = 3;
const TOKEN = 0;
const UNTIL = 1;
const HANDED = 2;

/** Reads the table (the delivery thread, or the main thread). */
export class LeaseGate {
  protected readonly v: Float64Array;

  constructor(
    readonly buffer: SharedArrayBuffer,
    private readonly now: () => number = monoMs,
  ) {
    this.v = new Float64Array(buffer);
  }

  get slotCount(): number {
    return this.v.length / STRIDE;
  }

  /** True while this node holds the lease `token` on `slot`, by its own monotonic clock (margins applied by the writer). */
  holds(slot: number, token: number): boolean {
    const i = slot * STRIDE;
    if (i < 0 || i >= this.v.length) return false;
    return this.now() <= this.v[i + UNTIL]! && this.v[i + TOKEN] === token;
  }

  /** True when the lease `token` on `slot` was handed back on purpose (not lapsed, not taken). */
  handedBack(slot: number, token: number): boolean {
    const i = slot * STRIDE;
    return i >= 0 && i < this.v.length && this.v[i + HANDED] === token;
  }
}

/** The writer's side (RedisOwnership, on the main thread). */
export class LeaseTable extends LeaseGate {
  constructor(slots: number, now: () => number = monoMs) {
    super(new SharedArrayBuffer(slots * STRIDE * Float64Array.BYTES_PER_ELEMENT), now);
    for (let s = 0; s < slots; s++) this.v[s * STRIDE + UNTIL] = -Infinity;
  }

  /** A lease taken or renewed: held until `until` (monotonic ms, margins already subtracted). */
  set(slot: number, token: number, until: number): void {
    const i = slot * STRIDE;
    if (this.v[i + TOKEN] !== token) {
      this.v[i + UNTIL] = -Infinity;
      this.v[i + TOKEN] = token;
    }
    this.v[i + UNTIL] = until;
  }

  /** A lease ended. `handedBack`: given up on purpose (see the module comment). */
  drop(slot: number, handedBack = false): void {
    const i = slot * STRIDE;
    this.v[i + UNTIL] = -Infinity;
    if (handedBack) this.v[i + HANDED] = this.v[i + TOKEN]!;
  }
}
