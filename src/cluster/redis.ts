/**
 * RedisOwnership: cluster membership and per-slot leases with fencing tokens (DESIGN.md, "Cluster
 * mode").
 *
 * Every tick (lease/5, 600 ms by default) a node
 *   1. heartbeats into `{<prefix>}:members` (Redis server time) and reads the live members: the
 *      nodes seen within the lease time;
 *   2. renews each lease it holds (compare token, then PEXPIRE). Any renewal error or timeout means
 *      it can no longer prove ownership: it emits 'lost' for every slot at once, long before the
 *      leases (renewed one tick ago) can expire. A renewal answered "not yours" loses that slot;
 *   3. ranks the live members per slot by rendezvous hashing. It hands back the slots whose
 *      preferred owner is another member seen for two ticks (emit 'lost', then compare-and-delete),
 *      takes the free slots it prefers (SET PX + a raise of the slot's epoch = the fencing token), and
 *      takes any slot left free for two ticks (an orphan: liveness beats balance). A slot whose
 *      owner went away and whose chosen new owner does not take it is taken sooner, beyond the fair
 *      share (src/cluster/orphans.ts).
 * Besides, `tokenFor` answers only while the lease is surely still valid (local monotonic clock,
 * measured from before the renewal was sent, minus a margin), and a watchdog emits 'lost' when that
 * time passes without a renewal: a node frozen longer than that (SIGSTOP, a long GC pause) never
 * fires with a token it cannot prove. The store re-checks the token and the lease in the commit
 * script anyway; these local checks only keep a stale node from trying.
 *
 * The same validity is written to a LeaseTable shared with the delivery thread, which checks it
 * right before it writes each request: a store cannot fence a receiver, so a node resumed after a
 * pause must not send what it had claimed before it. The margin (lease/5, at least 50 ms) covers
 * the clock drift between this node and Redis (a rate error of 20 %, where real clocks drift by
 * less than 0.01 %) and the time between the check and the request's bytes leaving (microseconds:
 * the check runs in the same turn as the socket write). The renewal's time in flight needs no
 * margin: the validity counts from before the renewal was sent, and Redis starts the new expiry
 * only when it runs it.
 *
 * `slots` is fixed in Redis the first time a node starts; a node with another count refuses to
 * start.
 *
 * The leases held and their validity are in held-leases.ts, the round's decisions (live members,
 * suspects, what to hand back and take) in rebalance.ts, and cluster mode's assembly in mode.ts.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { ConfigError } from '../errors.js';
import { toStoreError, type RedisClient } from '../redis/connection.js';
import { RedisKeys } from '../redis/keys.js';
import { evalScript, script } from '../redis/scripts.js';
import { monoMs } from '../clock/mono.js';
import { HeldLeases } from './held-leases.js';
import type { Ownership, OwnershipEvents, SlotInfo } from './ownership.js';
import { OrphanWatch } from './orphans.js';
import { MAX_EXTRA_ROUNDS, parseLease, planRebalance, readHeartbeat, SUSPECT_PERIODS, TAKEOVER_SLACK_MS } from './rebalance.js';
import { recoveryStore } from './recovery-store.js';

export { recoveryStore };
export { preferredOwner, rendezvousWeight } from './rebalance.js';

export interface RedisOwnershipOptions {
  /** A connection of its own (so store traffic never delays a renewal), with a short command timeout. */
  client: RedisClient;
  nodeId: string;
  slots: number;
  leaseMs: number;
  prefix: string;
  log: Logger;
  /**
   * Re-announce the owned slots ('acquired') this often: the scheduler reloads its window and
   * redelivers runs left by nodes that are gone. A safety net for lost notifications. 0: never.
   */
  refreshMs?: number;
  /** Monotonic milliseconds (injectable for tests). */
  now?: () => number;
}

export class RedisOwnership extends EventEmitter<OwnershipEvents> implements Ownership {
  readonly nodeId: string;
  readonly slotCount: number;
  private readonly client: RedisClient;
  private readonly leaseMs: number;
  private readonly tickMs: number;
  private readonly marginMs: number;
  private readonly prefix: string;
  private readonly keys: RedisKeys;
  private readonly log: Logger;
  private readonly now: () => number;
  /** The leases held (and the table the delivery thread reads). */
  private readonly held: HeldLeases;
  private members: string[] = [];
  private readonly seenTicks = new Map<string, number>();
  private readonly freeTicks = new Map<number, number>();
  /** Slots whose owner is gone, taken beyond the fair share when their chosen survivor does not take them. */
  private readonly orphans: OrphanWatch;
  private healthyUntil = -Infinity;
  private started = false;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  /** When the pending round is due (monotonic ms). */
  private timerAt = Infinity;
  /** An earlier round asked for (a suspect member's leases expire then), or Infinity. */
  private wakeAt = Infinity;
  /** Extra rounds run in a row because a gone member's lease was still there. */
  private extraRounds = 0;
  private refreshTimer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;

  constructor(private readonly o: RedisOwnershipOptions) {
    super();
    this.nodeId = o.nodeId;
    this.slotCount = o.slots;
    this.client = o.client;
    this.leaseMs = o.leaseMs;
    this.tickMs = Math.max(50, Math.floor(o.leaseMs / 5));
    this.marginMs = Math.max(50, Math.floor(o.leaseMs / 5));
    this.prefix = o.prefix;
    this.keys = new RedisKeys(o.prefix);
    this.log = o.log;
    this.now = o.now ?? monoMs;
    this.held = new HeldLeases({ slots: o.slots, now: this.now, log: o.log, lost: (slots) => this.emit('lost', slots) });
    this.orphans = new OrphanWatch(o.nodeId, Math.max(TAKEOVER_SLACK_MS * 2, Math.floor(this.tickMs / 4)), Math.ceil(this.tickMs * SUSPECT_PERIODS), o.leaseMs);
  }

  /** The lease safety margin (ms): a lease counts as held until lease - margin after its renewal was sent. */
  get leaseMarginMs(): number {
    return this.marginMs;
  }

  leaseBuffer(): SharedArrayBuffer {
    return this.held.table.buffer;
  }

  holds(slot: number, token: number): boolean {
    return this.tokenFor(slot) === token;
  }

  mayAct(slot: number, token: number): boolean {
    return this.holds(slot, token) || this.held.table.handedBack(slot, token);
  }

  /** Releases a lease in Redis (compare token, then delete); a failure is left to the lease's expiry. */
  private release(slot: number, token: number): Promise<unknown> {
    return evalScript(this.client, script('release'), [this.keys.slot(slot)], [token, this.nodeId]).catch(() => 0);
  }

  /** Fixes the slot count in Redis on first use; throws ConfigError when the cluster uses another. */
  async checkSlots(): Promise<void> {
    const stored = Number(await evalScript(this.client, script('claimSlots'), [this.keys.slotCount()], [this.slotCount]));
    if (stored !== this.slotCount) {
      throw new ConfigError(
        `'cluster.slots' is ${this.slotCount}, but the cluster in this Redis (key prefix "${this.prefix}") uses ${stored} slots; ` +
          `every node of a cluster must use the same value (set slots = ${stored}, or use another key_prefix for a new cluster)`,
      );
    }
  }

  async start(): Promise<void> {
    if (this.started) return;
    await this.checkSlots();
    this.started = true;
    // As `ticking`, so that a round asked for meanwhile (wakeAtTime) waits for this one.
    this.ticking = this.tick();
    await this.ticking;
    this.ticking = null;
    this.schedule();
    const refresh = this.o.refreshMs ?? 30_000;
    if (refresh > 0) {
      this.refreshTimer = setInterval(() => this.reannounce('periodic refresh', true), refresh);
      this.refreshTimer.unref();
    }
  }

  /**
   * Sets the next round: a renewal period from now, or earlier when a round was asked for at
   * `wakeAt` (a suspect member's leases expire then: see SUSPECT_PERIODS).
   */
  private schedule(): void {
    if (this.stopped || this.ticking) return;
    const now = this.now();
    const at = Math.min(now + this.tickMs, Math.max(now, this.wakeAt));
    if (this.timer) {
      if (this.timerAt <= at) return;
      clearTimeout(this.timer);
    }
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerAt = Infinity;
      const early = this.wakeAt <= this.now() + 1;
      this.wakeAt = Infinity;
      this.ticking = this.tick(early).finally(() => {
        this.ticking = null;
        this.schedule();
      });
    }, at - now);
  }

  /** Asks for a round at monotonic time `at` (or at once, when a round is running, after it). */
  private wakeAtTime(at: number): void {
    if (at >= this.wakeAt) return;
    this.wakeAt = at;
    this.schedule();
  }

  /** Hands every slot back (so others take them at once), leaves the member set, stops. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.stopped = true;
      if (this.timer) clearTimeout(this.timer);
      if (this.refreshTimer) clearInterval(this.refreshTimer);
      this.timer = null;
      this.timerAt = Infinity;
      if (this.ticking) await this.ticking;
      const held = this.held.entries();
      this.held.dropAll(null, true);
      this.held.disarmWatchdog();
      await Promise.all(held.map(([slot, l]) => this.release(slot, l.token)));
      await evalScript(this.client, script('heartbeat'), [this.keys.members()], [this.nodeId, this.leaseMs, 1]).catch(() => null);
      this.healthyUntil = -Infinity;
      if (held.length > 0) this.log.info({ slots: held.length }, 'slots handed back');
    })();
    return this.stopping;
  }

  tokenFor(slot: number): number | null {
    return this.held.tokenFor(slot);
  }

  ownedSlots(): number[] {
    return this.held.slots();
  }

  reportFenced(slot: number): void {
    this.held.reportFenced(slot);
  }


  isMember(): boolean {
    return this.started && !this.stopped && this.now() < this.healthyUntil;
  }

  /** Live members as of the last heartbeat. */
  liveMembers(): readonly string[] {
    return this.members;
  }

  isLive(node: string): boolean {
    return this.members.includes(node);
  }

  /**
   * Announces the owned slots again ('acquired'): the scheduler reloads its window and redelivers
   * the outbox of those slots (runs of nodes that are gone). Used after a member left, after the
   * change feed reconnected (notifications may have been lost), and periodically.
   */
  reannounce(reason: string, periodic = false): void {
    if (this.stopped || this.held.size === 0) return;
    this.log.debug({ reason, slots: this.held.size }, 'reloading owned slots');
    this.emit('acquired', this.ownedSlots(), periodic);
  }

  async describe(): Promise<{ node: string; members: string[]; slots: SlotInfo[] }> {
    try {
      const values = await Promise.all(Array.from({ length: this.slotCount }, (_, s) => this.client.get(this.keys.lease(s))));
      return {
        node: this.nodeId,
        members: [...this.members],
        slots: values.map((v, slot) => {
          const l = parseLease(v);
          return { slot, owner: l ? l.owner : null, epoch: l ? l.epoch : null };
        }),
      };
    } catch (e) {
      throw toStoreError(e);
    }
  }

  // ---- the loop ----

  /**
   * One round: heartbeat, renew, hand back, acquire. Never throws. `early`: a round run before its
   * period to take over a suspect member's slots the moment its leases expire; it does not count
   * towards STABLE_TICKS (a joining member is still seen for two periods before slots move to it).
   */
  private async tick(early = false): Promise<void> {
    if (this.stopped) return;
    const t0 = this.now();
    const membersKey = this.keys.members();
    // Heartbeat and renewals go out together: under load, every round trip saved is time the
    // leases stay valid (they count from t0).
    const held = this.held.entries();
    const heartbeat = evalScript(this.client, script('heartbeat'), [membersKey], [this.nodeId, this.leaseMs, 0]);
    const renewals = Promise.all(held.map(([slot, l]) => evalScript(this.client, script('renew'), [this.keys.slot(slot)], [l.token, this.nodeId, this.leaseMs])));
    let live: string[];
    /** Each other member's lease expiry estimated from its last heartbeat (monotonic ms), for the suspects. */
    let suspects: Map<string, number>;
    /** Each live member's last heartbeat, and Redis's time (ms). */
    let seenAt: Map<string, number>;
    let redisNow: number;
    try {
      ({ live, suspects, seenAt, redisNow } = readHeartbeat((await heartbeat) as unknown[], this.now(), { nodeId: this.nodeId, tickMs: this.tickMs, leaseMs: this.leaseMs }));
    } catch (e) {
      renewals.catch(() => undefined);
      this.fail('heartbeat failed', e);
      return;
    }
    if (this.stopped) {
      renewals.catch(() => undefined);
      return;
    }
    this.healthyUntil = t0 + this.leaseMs - this.marginMs;
    const departed = this.members.filter((m) => m !== this.nodeId && !live.includes(m));
    const joined = live.filter((m) => !this.members.includes(m));
    for (const m of [...this.seenTicks.keys()]) if (!live.includes(m)) this.seenTicks.delete(m);
    if (!early) for (const m of live) this.seenTicks.set(m, (this.seenTicks.get(m) ?? 0) + 1);
    for (const at of suspects.values()) this.wakeAtTime(at);
    this.orphans.observe(live, suspects);
    this.members = live;
    if (departed.length > 0 || joined.length > 0) this.log.info({ members: live, joined, departed }, 'cluster membership changed');

    // Renew.
    let renewed: unknown[];
    try {
      renewed = await renewals;
    } catch (e) {
      this.fail('lease renewal failed', e);
      return;
    }
    if (this.stopped) return;
    const lost: number[] = [];
    held.forEach(([slot, l], i) => {
      if (this.held.get(slot) !== l) return; // dropped meanwhile (fenced)
      if (renewed[i] === 1) {
        l.validUntil = t0 + this.leaseMs - this.marginMs;
        this.held.keep(slot, l);
      } else {
        this.held.forget(slot);
        lost.push(slot);
      }
    });
    if (lost.length > 0) {
      this.log.warn({ slots: lost }, 'leases lost (expired or taken over)');
      this.emit('lost', lost);
    }

    // Rebalance.
    let leases: (string | null)[];
    try {
      leases = await Promise.all(Array.from({ length: this.slotCount }, (_, s) => (this.held.has(s) ? Promise.resolve(null) : this.client.get(this.keys.lease(s)))));
    } catch (e) {
      // The leases this node holds were renewed above: a failed read of the others (a slow Redis, a
      // timeout under load) only postpones the rebalancing to the next round.
      this.skipRebalance('reading leases failed', e);
      return;
    }
    if (this.stopped) return;
    const { handBack, want, beyondShare, gone, wakeAt } = planRebalance({ nodeId: this.nodeId, slotCount: this.slotCount, live, leases, held: this.held, seenTicks: this.seenTicks, freeTicks: this.freeTicks, early, suspects, seenAt, orphans: this.orphans, now: this.now() });
    this.wakeAtTime(wakeAt);
    if (handBack.length > 0) {
      for (const [s] of handBack) this.held.forget(s, true);
      this.emit(
        'lost',
        handBack.map(([s]) => s),
      );
      await Promise.all(handBack.map(([s, l]) => this.release(s, l.token)));
      this.log.info({ slots: handBack.length }, 'slots handed back to their preferred owners');
    }
    if (want.length > 0 && !this.stopped) {
      const t1 = this.now();
      const got: number[] = [];
      // Each slot on its own: a take that failed (a timeout) is retried next round, the others stand.
      // A take that reached Redis although its answer was lost is this node's own lease, which the
      // next round takes again (acquire re-takes a lease this node holds).
      const res = await Promise.allSettled(want.map((s) => evalScript(this.client, script('acquire'), [this.keys.slot(s)], [this.nodeId, this.leaseMs])));
      if (this.stopped) {
        // stop() began meanwhile: give these back at once.
        await Promise.all(
          res.map((r, i) => {
            if (r.status !== 'fulfilled') return Promise.resolve(0);
            const [ok, epoch] = r.value as [number, number];
            return ok === 1 ? this.release(want[i]!, epoch) : Promise.resolve(0);
          }),
        );
        return;
      }
      let failed: unknown = null;
      res.forEach((r, i) => {
        if (r.status === 'rejected') {
          failed ??= r.reason;
          return;
        }
        const [ok, epoch] = r.value as [number, number | string];
        const s = want[i]!;
        if (ok !== 1) {
          const holder = parseLease(String(epoch));
          if (holder !== null) this.orphans.seen(s, holder.owner);
          return;
        }
        this.held.keep(s, { token: Number(epoch), validUntil: t1 + this.leaseMs - this.marginMs });
        this.freeTicks.delete(s);
        this.orphans.seen(s, this.nodeId);
        if (beyondShare.has(s)) this.orphans.tookBeyondShare(s, redisNow);
        got.push(s);
      });
      // An orphan whose take failed is tried again shortly, not a whole round later.
      if (failed !== null && this.orphans.pending(this.now())) this.wakeAtTime(this.now() + TAKEOVER_SLACK_MS * 2);
      const extra = got.filter((s) => beyondShare.has(s));
      if (extra.length > 0) this.log.info({ slots: extra }, 'orphaned slots taken beyond the fair share (the node chosen for them did not take them)');
      if (failed !== null) this.log.warn({ err: failed instanceof Error ? failed.message : String(failed), slots: want.length - got.length }, 'acquiring some leases failed: retried next round');
      if (got.length > 0) {
        this.log.info({ slots: got.length, owned: this.held.size }, 'slots acquired');
        this.emit('acquired', got);
      }
    }
    this.held.armWatchdog(this.stopped);
    if (departed.length > 0) this.reannounce(`member left: ${departed.join(', ')}`);
    if (gone && this.extraRounds < MAX_EXTRA_ROUNDS) {
      this.extraRounds++;
      this.wakeAtTime(this.now() + TAKEOVER_SLACK_MS * 2);
    } else if (!gone) this.extraRounds = 0;
  }

  /** A read for rebalancing failed: the renewed leases stand; the next round rebalances. */
  private skipRebalance(what: string, e: unknown): void {
    this.log.warn({ err: e instanceof Error ? e.message : String(e) }, `${what}: rebalancing postponed to the next round`);
    this.held.armWatchdog(this.stopped);
  }

  /** Renewal or heartbeat failed: stop firing at once (every slot is lost until a round succeeds). */
  private fail(what: string, e: unknown): void {
    this.healthyUntil = -Infinity;
    const err = e instanceof Error ? e.message : String(e);
    if (this.held.size > 0) this.log.warn({ err, slots: this.held.size }, `${what}: not firing any slot until Redis answers again`);
    else this.log.debug({ err }, what);
    this.held.dropAll(what);
  }
}
