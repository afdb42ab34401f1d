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
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { ConfigError, StoreUnavailableError } from '../errors.js';
import { connectRedis, createRedisClient, toStoreError, type RedisClient } from '../redis/connection.js';
import { RedisKeys } from '../redis/keys.js';
import { redactRedisUrl } from '../redis/url.js';
import { evalScript, script } from '../redis/scripts.js';
import { RedisTaskStore } from '../store/redis.js';
import type { HeldFireStore, TaskStore } from '../store/types.js';
import type { Run } from '../task/index.js';
import { monoMs } from '../clock/mono.js';
import { LeaseTable } from './lease-table.js';
import { ClusterNotifier } from './notify.js';
import { hash32, rendezvous, type Ownership, type OwnershipEvents, type SlotInfo } from './ownership.js';
import { OrphanWatch } from './orphans.js';
import { recoveryStore } from './recovery-store.js';

export { recoveryStore };

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

interface Lease {
  token: number;
  /** Local monotonic time until which the lease is surely still held. */
  validUntil: number;
}

/** Ticks a member must have been seen before slots are handed to it, and a slot must stay free before an orphan is taken. */
const STABLE_TICKS = 2;
/**
 * A member whose last heartbeat is older than this many renewal periods has missed one: it may be
 * gone (killed, frozen, cut off). Its leases expire `lease_ms` after that heartbeat (the renewals
 * follow it in the same round), so a round is run right then instead of up to a period later.
 */
const SUSPECT_PERIODS = 1.5;
/** Waited past a suspect member's computed lease expiry (its renewals reach Redis just after its heartbeat). */
const TAKEOVER_SLACK_MS = 20;
/** Extra rounds run while a gone member's lease is still seen (its renewal ran later than its heartbeat). */
const MAX_EXTRA_ROUNDS = 3;

/** 32-bit rendezvous weight of (node, slot). */
export function rendezvousWeight(node: string, slot: number): number {
  return hash32(`${slot}\u0000${node}`);
}

/** The preferred owner of a slot among `members` (highest weight; ties by node id). */
export function preferredOwner(slot: number, members: readonly string[]): string | null {
  return rendezvous(String(slot), members);
}

const parseLease = (v: string | null): { epoch: number; owner: string } | null => {
  if (v === null) return null;
  const i = v.indexOf('|');
  return i < 0 ? null : { epoch: Number(v.slice(0, i)), owner: v.slice(i + 1) };
};

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
  private readonly owned = new Map<number, Lease>();
  /** The leases as the delivery thread sees them (kept in step with `owned`). */
  private readonly table: LeaseTable;
  private members: string[] = [];
  private readonly seenTicks = new Map<string, number>();
  private readonly freeTicks = new Map<number, number>();
  /** Slots whose owner is gone, taken beyond the fair share when their chosen survivor is silent too. */
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
  private watchdog: NodeJS.Timeout | null = null;
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
    this.table = new LeaseTable(o.slots, this.now);
    this.orphans = new OrphanWatch(Math.max(TAKEOVER_SLACK_MS * 2, Math.floor(this.tickMs / 4)), Math.ceil(this.tickMs * SUSPECT_PERIODS), o.leaseMs);
  }

  /** The lease safety margin (ms): a lease counts as held until lease - margin after its renewal was sent. */
  get leaseMarginMs(): number {
    return this.marginMs;
  }

  leaseBuffer(): SharedArrayBuffer {
    return this.table.buffer;
  }

  holds(slot: number, token: number): boolean {
    return this.tokenFor(slot) === token;
  }

  mayAct(slot: number, token: number): boolean {
    return this.holds(slot, token) || this.table.handedBack(slot, token);
  }

  /** Takes or renews a lease here and in the shared table. */
  private keep(slot: number, l: Lease): void {
    this.owned.set(slot, l);
    this.table.set(slot, l.token, l.validUntil);
  }

  /** Ends a lease here and in the shared table (`handedBack`: given up on purpose). */
  private forget(slot: number, handedBack = false): boolean {
    this.table.drop(slot, handedBack);
    this.orphans.settled(slot);
    return this.owned.delete(slot);
  }

  private base(slot: number): string {
    return this.keys.slot(slot);
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
      const held = [...this.owned];
      this.dropAll(null, true);
      this.disarmWatchdog();
      await Promise.all(held.map(([slot, l]) => evalScript(this.client, script('release'), [this.base(slot)], [l.token, this.nodeId]).catch(() => 0)));
      await evalScript(this.client, script('heartbeat'), [this.keys.members()], [this.nodeId, this.leaseMs, 1]).catch(() => null);
      this.healthyUntil = -Infinity;
      if (held.length > 0) this.log.info({ slots: held.length }, 'slots handed back');
    })();
    return this.stopping;
  }

  tokenFor(slot: number): number | null {
    const l = this.owned.get(slot);
    if (!l) return null;
    if (this.now() > l.validUntil) {
      this.expireStale();
      return null;
    }
    return l.token;
  }

  ownedSlots(): number[] {
    return [...this.owned.keys()].sort((a, b) => a - b);
  }

  reportFenced(slot: number): void {
    if (!this.forget(slot)) return;
    this.log.warn({ slot }, 'fencing token refused by the store: slot lost');
    this.emit('lost', [slot]);
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
    if (this.stopped || this.owned.size === 0) return;
    this.log.debug({ reason, slots: this.owned.size }, 'reloading owned slots');
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
    const held = [...this.owned];
    const heartbeat = evalScript(this.client, script('heartbeat'), [membersKey], [this.nodeId, this.leaseMs, 0]);
    const renewals = Promise.all(held.map(([slot, l]) => evalScript(this.client, script('renew'), [this.base(slot)], [l.token, this.nodeId, this.leaseMs])));
    let live: string[];
    /** Each other member's lease expiry estimated from its last heartbeat (monotonic ms), for the suspects. */
    const suspects = new Map<string, number>();
    /** Each member's last heartbeat (Redis ms). */
    const seenAt = new Map<string, number>();
    let redisNow: number;
    try {
      const r = (await heartbeat) as unknown[];
      const tReply = this.now();
      redisNow = Number(r[0]);
      live = [];
      for (let i = 1; i + 1 < r.length; i += 2) {
        const m = String(r[i]);
        const seen = Number(r[i + 1]);
        live.push(m);
        seenAt.set(m, seen);
        // The heartbeat ran before tReply, so this estimate errs late, never early.
        if (m !== this.nodeId && redisNow - seen > this.tickMs * SUSPECT_PERIODS) suspects.set(m, tReply + seen + this.leaseMs - redisNow + TAKEOVER_SLACK_MS);
      }
      live.sort();
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
      if (this.owned.get(slot) !== l) return; // dropped meanwhile (fenced)
      if (renewed[i] === 1) {
        l.validUntil = t0 + this.leaseMs - this.marginMs;
        this.keep(slot, l);
      } else {
        this.forget(slot);
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
      leases = await Promise.all(Array.from({ length: this.slotCount }, (_, s) => (this.owned.has(s) ? Promise.resolve(null) : this.client.get(this.keys.lease(s)))));
    } catch (e) {
      // The leases this node holds were renewed above: a failed read of the others (a slow Redis, a
      // timeout under load) only postpones the rebalancing to the next round.
      this.skipRebalance('reading leases failed', e);
      return;
    }
    if (this.stopped) return;
    const handBack: [number, Lease][] = [];
    const want: number[] = [];
    // A lease still held by a member that is no longer live: its last renewal ran a moment after its
    // last heartbeat. Look again shortly (a few times) instead of a whole period later.
    let gone = false;
    const silent = (m: string): boolean => !live.includes(m) || suspects.has(m);
    /** Orphans taken beyond the fair share in this round. */
    const beyondShare = new Set<number>();
    for (let s = 0; s < this.slotCount; s++) {
      const pref = preferredOwner(s, live);
      const mine = this.owned.get(s);
      if (mine) {
        this.orphans.seen(s, this.nodeId);
        if (pref === this.nodeId) this.orphans.settled(s);
        // Never to a silent member, nor an orphan to a member not seen running since it was taken.
        else if (pref !== null && (this.seenTicks.get(pref) ?? 0) >= STABLE_TICKS && !suspects.has(pref) && this.orphans.mayHandBack(s, seenAt.get(pref))) handBack.push([s, mine]);
        continue;
      }
      const l = parseLease(leases[s] ?? null);
      if (l !== null && l.owner !== this.nodeId) {
        this.freeTicks.delete(s);
        this.orphans.seen(s, l.owner);
        if (!live.includes(l.owner)) gone = true;
        continue;
      }
      if (pref === this.nodeId || l !== null) {
        want.push(s);
        continue;
      }
      const d = pref === null ? null : this.orphans.decide(s, pref, this.now(), silent);
      if (d?.kind === 'take') {
        want.push(s);
        beyondShare.add(s);
        continue;
      }
      if (d?.kind === 'wait') {
        this.wakeAtTime(d.at);
        continue;
      }
      if (early) continue;
      const n = (this.freeTicks.get(s) ?? 0) + 1;
      this.freeTicks.set(s, n);
      if (n >= STABLE_TICKS) want.push(s);
    }
    if (handBack.length > 0) {
      for (const [s] of handBack) this.forget(s, true);
      this.emit(
        'lost',
        handBack.map(([s]) => s),
      );
      await Promise.all(handBack.map(([s, l]) => evalScript(this.client, script('release'), [this.base(s)], [l.token, this.nodeId]).catch(() => 0)));
      this.log.info({ slots: handBack.length }, 'slots handed back to their preferred owners');
    }
    if (want.length > 0 && !this.stopped) {
      const t1 = this.now();
      const got: number[] = [];
      // Each slot on its own: a take that failed (a timeout) is retried next round, the others stand.
      // A take that reached Redis although its answer was lost is this node's own lease, which the
      // next round takes again (acquire re-takes a lease this node holds).
      const res = await Promise.allSettled(want.map((s) => evalScript(this.client, script('acquire'), [this.base(s)], [this.nodeId, this.leaseMs])));
      if (this.stopped) {
        // stop() began meanwhile: give these back at once.
        await Promise.all(
          res.map((r, i) => {
            if (r.status !== 'fulfilled') return Promise.resolve(0);
            const [ok, epoch] = r.value as [number, number];
            return ok === 1 ? evalScript(this.client, script('release'), [this.base(want[i]!)], [epoch, this.nodeId]).catch(() => 0) : Promise.resolve(0);
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
        this.keep(s, { token: Number(epoch), validUntil: t1 + this.leaseMs - this.marginMs });
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
        this.log.info({ slots: got.length, owned: this.owned.size }, 'slots acquired');
        this.emit('acquired', got);
      }
    }
    this.armWatchdog();
    if (departed.length > 0) this.reannounce(`member left: ${departed.join(', ')}`);
    if (gone && this.extraRounds < MAX_EXTRA_ROUNDS) {
      this.extraRounds++;
      this.wakeAtTime(this.now() + TAKEOVER_SLACK_MS * 2);
    } else if (!gone) this.extraRounds = 0;
  }

  /** A read for rebalancing failed: the renewed leases stand; the next round rebalances. */
  private skipRebalance(what: string, e: unknown): void {
    this.log.warn({ err: e instanceof Error ? e.message : String(e) }, `${what}: rebalancing postponed to the next round`);
    this.armWatchdog();
  }

  /** Renewal or heartbeat failed: stop firing at once (every slot is lost until a round succeeds). */
  private fail(what: string, e: unknown): void {
    this.healthyUntil = -Infinity;
    const err = e instanceof Error ? e.message : String(e);
    if (this.owned.size > 0) this.log.warn({ err, slots: this.owned.size }, `${what}: not firing any slot until Redis answers again`);
    else this.log.debug({ err }, what);
    this.dropAll(what);
  }

  private dropAll(reason: string | null, handedBack = false): void {
    if (this.owned.size === 0) return;
    const slots = this.ownedSlots();
    for (const s of slots) this.forget(s, handedBack);
    if (reason) this.log.debug({ reason, slots: slots.length }, 'dropping all slots');
    this.emit('lost', slots);
  }

  /** Drops the slots whose lease may have expired (no successful renewal in time). */
  private expireStale(): void {
    const now = this.now();
    const stale: number[] = [];
    for (const [s, l] of this.owned) if (now > l.validUntil) stale.push(s);
    if (stale.length === 0) return;
    for (const s of stale) this.forget(s);
    this.log.warn({ slots: stale.length }, 'leases not renewed in time (process paused or Redis slow): not firing those slots');
    this.emit('lost', stale);
  }

  private armWatchdog(): void {
    this.disarmWatchdog();
    if (this.owned.size === 0 || this.stopped) return;
    let first = Infinity;
    for (const l of this.owned.values()) first = Math.min(first, l.validUntil);
    this.watchdog = setTimeout(() => {
      this.watchdog = null;
      this.expireStale();
    }, Math.max(0, first - this.now()) + 1);
    this.watchdog.unref();
  }

  private disarmWatchdog(): void {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = null;
  }
}

// ---------------------------------------------------------------------------------------------

export interface ClusterSettings {
  redis_url: string;
  redis_cluster: boolean;
  redis_password: string;
  redis_tls: boolean;
  redis_sentinel_password?: string;
  min_replica_acks?: number;
  replica_ack_timeout_ms?: number;
  slots: number;
  lease_ms: number;
  key_prefix: string;
}

/** Everything cluster mode adds, built from the [cluster] config. */
export interface ClusterMode {
  store: RedisTaskStore;
  /** The store for the scheduler (recovery skips runs live nodes are delivering). */
  schedulerStore: TaskStore;
  ownership: RedisOwnership;
  notifier: ClusterNotifier;
  /** Readiness: a heartbeating member, a connected change feed and a connected store. */
  ready(): Promise<boolean>;
  /** Closes the change feed and the ownership connection (the store closes its own). Safe to call twice: the same promise. */
  close(): Promise<void>;
}

/**
 * Connects to Redis (three connections: store, ownership, change feed), checks the slot count and
 * builds the cluster parts. Throws ConfigError on a slot-count mismatch.
 */
export async function openClusterMode(o: { cluster: ClusterSettings; nodeId: string; log: Logger; connectTimeoutMs?: number }): Promise<ClusterMode> {
  const c = o.cluster;
  const log = o.log.child({ module: 'cluster' });
  const conn = (name: string, commandTimeoutMs: number): RedisClient =>
    createRedisClient({ url: c.redis_url, password: c.redis_password, tls: c.redis_tls, cluster: c.redis_cluster, sentinelPassword: c.redis_sentinel_password, commandTimeoutMs, name: `xcron:${o.nodeId}:${name}`, log });
  const replicaAcks = { count: c.min_replica_acks ?? 0, timeoutMs: c.replica_ack_timeout_ms ?? 1000 };
  // A WAIT must be able to use its whole timeout before the command times out.
  const storeClient = conn('store', replicaAcks.count > 0 ? Math.max(2000, replicaAcks.timeoutMs + 1000) : 2000);
  const ownClient = conn('ownership', Math.max(100, Math.floor(c.lease_ms / 3)));
  const subClient = conn('feed', 2000);
  const clients = [storeClient, ownClient, subClient];
  try {
    const timeout = o.connectTimeoutMs ?? 30_000;
    await Promise.all(clients.map((cl) => connectRedis(cl, timeout, log, redactRedisUrl(c.redis_url))));
  } catch (e) {
    for (const cl of clients) cl.disconnect();
    throw new StoreUnavailableError((e as Error).message);
  }
  const store = new RedisTaskStore({ client: storeClient, prefix: c.key_prefix, slots: c.slots, log: o.log.child({ module: 'store' }), replicaAcks });
  const ownership = new RedisOwnership({ client: ownClient, nodeId: o.nodeId, slots: c.slots, leaseMs: c.lease_ms, prefix: c.key_prefix, log });
  try {
    await ownership.checkSlots();
  } catch (e) {
    for (const cl of clients) cl.disconnect();
    throw e;
  }
  const notifier = new ClusterNotifier({ pub: storeClient, sub: subClient, prefix: c.key_prefix, ownership, store, log });
  await notifier.start();
  let closing: Promise<void> | null = null;
  return {
    store,
    schedulerStore: recoveryStore(store, ownership),
    ownership,
    notifier,
    // The store's own connection too: after a failover each connection finds the new primary on
    // its own, and a node whose store connection is still reconnecting would answer 503.
    ready: () => Promise.resolve(ownership.isMember() && notifier.connected() && storeClient.status === 'ready'),
    close: () =>
      (closing ??= (async () => {
        await notifier.close();
        await ownClient.quit().catch(() => ownClient.disconnect());
      })()),
  };
}
