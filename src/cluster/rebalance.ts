/**
 * The decisions of a lease round (RedisOwnership, src/cluster/redis.ts), apart from the Redis
 * calls: who is live and who is suspect from the heartbeat's answer, and which slots to hand back
 * to their preferred owner and which to take. Slots are ranked per member by rendezvous hashing.
 */
import type { HeldLeases, Lease } from './held-leases.js';
import type { OrphanWatch } from './orphans.js';
import { hash32, rendezvous } from './ownership.js';

/** Ticks a member must have been seen before slots are handed to it, and a slot must stay free before an orphan is taken. */
export const STABLE_TICKS = 2;
/**
 * A member whose last heartbeat is older than this many renewal periods has missed one: it may be
 * gone (killed, frozen, cut off). Its leases expire `lease_ms` after that heartbeat (the renewals
 * follow it in the same round), so a round is run right then instead of up to a period later.
 */
export const SUSPECT_PERIODS = 1.5;
/** Waited past a suspect member's computed lease expiry (its renewals reach Redis just after its heartbeat). */
export const TAKEOVER_SLACK_MS = 20;
/** Extra rounds run while a gone member's lease is still seen (its renewal ran later than its heartbeat). */
export const MAX_EXTRA_ROUNDS = 3;

/** 32-bit rendezvous weight of (node, slot). */
export function rendezvousWeight(node: string, slot: number): number {
  return hash32(`${slot}\u0000${node}`);
}

/** The preferred owner of a slot among `members` (highest weight; ties by node id). */
export function preferredOwner(slot: number, members: readonly string[]): string | null {
  return rendezvous(String(slot), members);
}

/** A lease key's value, "<epoch>|<owner>" (null: no lease). */
export const parseLease = (v: string | null): { epoch: number; owner: string } | null => {
  if (v === null) return null;
  const i = v.indexOf('|');
  return i < 0 ? null : { epoch: Number(v.slice(0, i)), owner: v.slice(i + 1) };
};

/**
 * The heartbeat script's answer (Redis time, then member and last-seen pairs) read at local
 * monotonic time `tReply`: the live members, sorted, and each other member's lease expiry estimated
 * from its last heartbeat (monotonic ms) for the suspects (see SUSPECT_PERIODS).
 */
export function readHeartbeat(
  r: unknown[],
  tReply: number,
  o: { nodeId: string; tickMs: number; leaseMs: number },
): { live: string[]; suspects: Map<string, number>; seenAt: Map<string, number>; redisNow: number } {
  const redisNow = Number(r[0]);
  const live: string[] = [];
  const suspects = new Map<string, number>();
  /** Each live member's last heartbeat (Redis ms). */
  const seenAt = new Map<string, number>();
  for (let i = 1; i + 1 < r.length; i += 2) {
    const m = String(r[i]);
    const seen = Number(r[i + 1]);
    live.push(m);
    seenAt.set(m, seen);
    // The heartbeat ran before tReply, so this estimate errs late, never early.
    if (m !== o.nodeId && redisNow - seen > o.tickMs * SUSPECT_PERIODS) suspects.set(m, tReply + seen + o.leaseMs - redisNow + TAKEOVER_SLACK_MS);
  }
  live.sort();
  return { live, suspects, seenAt, redisNow };
}

export interface RebalanceInput {
  nodeId: string;
  slotCount: number;
  live: readonly string[];
  /** Per slot, the lease read from Redis (null for the slots this node holds, or a free slot). */
  leases: readonly (string | null)[];
  held: HeldLeases;
  /** Rounds each live member has been seen in. */
  seenTicks: ReadonlyMap<string, number>;
  /** Rounds each slot has been seen free in: counted on here (and cleared for a slot taken by another). */
  freeTicks: Map<number, number>;
  /** A round run early (see RedisOwnership.tick): free slots are not counted. */
  early: boolean;
  /** The silent members among `live` (readHeartbeat's suspects). */
  suspects: ReadonlyMap<string, unknown>;
  /** Each live member's last heartbeat (Redis ms). */
  seenAt: ReadonlyMap<string, number>;
  /** Orphaned slots (src/cluster/orphans.ts): updated here. */
  orphans: OrphanWatch;
  /** Monotonic ms. */
  now: number;
}

/**
 * Which held leases to hand back (their preferred owner is another member seen for STABLE_TICKS,
 * not silent, and for a slot taken beyond the share, seen running since), which slots to take
 * (preferred here, this node's own lease, an orphan whose chosen owner did not take it: listed in
 * `beyondShare` too, or a slot free for STABLE_TICKS), whether a lease of a member that is no longer
 * live was seen (`gone`), and when to look again at orphans left to their chosen owner (`wakeAt`).
 */
export function planRebalance(i: RebalanceInput): { handBack: [number, Lease][]; want: number[]; beyondShare: Set<number>; gone: boolean; wakeAt: number } {
  const handBack: [number, Lease][] = [];
  const want: number[] = [];
  const beyondShare = new Set<number>();
  let wakeAt = Infinity;
  // A lease still held by a member that is no longer live: its last renewal ran a moment after its
  // last heartbeat. Look again shortly (a few times) instead of a whole period later.
  let gone = false;
  const silent = (m: string): boolean => !i.live.includes(m) || i.suspects.has(m);
  for (let s = 0; s < i.slotCount; s++) {
    const pref = preferredOwner(s, i.live);
    const mine = i.held.get(s);
    if (mine) {
      i.orphans.seen(s, i.nodeId);
      if (pref === i.nodeId) i.orphans.settled(s);
      // Never to a silent member, nor an orphan to a member not seen running since it was taken.
      else if (pref !== null && (i.seenTicks.get(pref) ?? 0) >= STABLE_TICKS && !i.suspects.has(pref) && i.orphans.mayHandBack(s, i.seenAt.get(pref))) handBack.push([s, mine]);
      continue;
    }
    const l = parseLease(i.leases[s] ?? null);
    if (l !== null && l.owner !== i.nodeId) {
      i.freeTicks.delete(s);
      i.orphans.seen(s, l.owner);
      if (!i.live.includes(l.owner)) gone = true;
      continue;
    }
    if (pref === i.nodeId || l !== null) {
      want.push(s);
      continue;
    }
    const d = pref === null ? null : i.orphans.decide(s, pref, i.now, silent);
    if (d?.kind === 'take') {
      want.push(s);
      beyondShare.add(s);
      continue;
    }
    if (d?.kind === 'wait') {
      wakeAt = Math.min(wakeAt, d.at);
      continue;
    }
    if (i.early) continue;
    const n = (i.freeTicks.get(s) ?? 0) + 1;
    i.freeTicks.set(s, n);
    if (n >= STABLE_TICKS) want.push(s);
  }
  return { handBack, want, beyondShare, gone, wakeAt };
}
