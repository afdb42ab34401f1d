/**
 * The decisions of a lease round (RedisOwnership, src/cluster/redis.ts), apart from the Redis
 * calls: who is live and who is suspect from the heartbeat's answer, and which slots to hand back
 * to their preferred owner and which to take. Slots are ranked per member by rendezvous hashing.
 */
import type { HeldLeases, Lease } from './held-leases.js';
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
export function readHeartbeat(r: unknown[], tReply: number, o: { nodeId: string; tickMs: number; leaseMs: number }): { live: string[]; suspects: Map<string, number> } {
  const redisNow = Number(r[0]);
  const live: string[] = [];
  const suspects = new Map<string, number>();
  for (let i = 1; i + 1 < r.length; i += 2) {
    const m = String(r[i]);
    const seen = Number(r[i + 1]);
    live.push(m);
    // The heartbeat ran before tReply, so this estimate errs late, never early.
    if (m !== o.nodeId && redisNow - seen > o.tickMs * SUSPECT_PERIODS) suspects.set(m, tReply + seen + o.leaseMs - redisNow + TAKEOVER_SLACK_MS);
  }
  live.sort();
  return { live, suspects };
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
}

/**
 * Which held leases to hand back (their preferred owner is another member seen for STABLE_TICKS),
 * which slots to take (preferred here, this node's own lease, or an orphan free for STABLE_TICKS),
 * and whether a lease of a member that is no longer live was seen (`gone`).
 */
export function planRebalance(i: RebalanceInput): { handBack: [number, Lease][]; want: number[]; gone: boolean } {
  const handBack: [number, Lease][] = [];
  const want: number[] = [];
  // A lease still held by a member that is no longer live: its last renewal ran a moment after its
  // last heartbeat. Look again shortly (a few times) instead of a whole period later.
  let gone = false;
  for (let s = 0; s < i.slotCount; s++) {
    const pref = preferredOwner(s, i.live);
    const mine = i.held.get(s);
    if (mine) {
      if (pref !== null && pref !== i.nodeId && (i.seenTicks.get(pref) ?? 0) >= STABLE_TICKS) handBack.push([s, mine]);
      continue;
    }
    const l = parseLease(i.leases[s] ?? null);
    if (l !== null && l.owner !== i.nodeId) {
      i.freeTicks.delete(s);
      if (!i.live.includes(l.owner)) gone = true;
      continue;
    }
    if (pref === i.nodeId || l !== null) {
      want.push(s);
      continue;
    }
    if (i.early) continue;
    const n = (i.freeTicks.get(s) ?? 0) + 1;
    i.freeTicks.set(s, n);
    if (n >= STABLE_TICKS) want.push(s);
  }
  return { handBack, want, gone };
}
