/**
 * Orphaned slots (issue 27): a slot whose lease expired because its owner left the cluster (killed,
 * frozen, cut off). Rendezvous hashing names one survivor per slot, and that survivor takes it in
 * its own takeover round, at the moment the lease expires. But the chosen survivor may itself be
 * frozen or dead by then (a kill, then a freeze of a second node as the first one's leases expire):
 * the slot would stay free until that node leaves the member list (its own lease of silence) or
 * until another node takes it as an orphan two rounds later.
 *
 * So every survivor watches the slots whose last owner is gone. A free one is taken beyond the fair
 * share at once when its chosen survivor is itself silent (a suspect), and otherwise after a grace:
 * short when the last owner went silent (every survivor runs its takeover round at the moment the
 * leases expire, so the chosen one has had its turn), a round and a half when it left on purpose
 * (its slots were handed back at no set moment, and the chosen one sees it in its next round). A slot taken that way is handed back only
 * once the chosen survivor has heartbeated after the take (it is running): a frozen node gets
 * nothing back, and a live one gets its share at the next rebalance.
 *
 * Safety is unchanged: a slot is still taken only when its lease key is gone from Redis.
 */

/** The decision for a free slot that another member is preferred for. */
export type OrphanDecision =
  /** Not an orphan (no owner seen, or its last owner is live): the regular rule applies. */
  | { kind: 'regular' }
  /** Take it now, beyond this node's fair share. */
  | { kind: 'take' }
  /** Give the preferred owner until `at` (monotonic ms); look again then. */
  | { kind: 'wait'; at: number };

export class OrphanWatch {
  /** The owner last seen on each slot's lease (or this node, for the slots it holds). */
  private readonly lastOwner = new Map<number, string>();
  /** When each orphan was first seen free (monotonic ms). */
  private readonly freeSince = new Map<number, number>();
  /** Slots taken beyond the fair share: the Redis time (ms) of the round that took them. */
  private readonly beyondShare = new Map<number, number>();
  /** Members seen silent (suspects) and not seen healthy since: their leases expire rather than being handed back. */
  private readonly wentSilent = new Set<string>();

  /**
   * @param graceMs how long the preferred owner of an orphan whose owner went silent gets before
   *   another node takes it
   * @param handedBackGraceMs the same, when the last owner left on purpose
   * @param giveUpMs how long after it was first seen free an orphan is looked after this way
   */
  constructor(
    private readonly nodeId: string,
    readonly graceMs: number,
    readonly handedBackGraceMs: number,
    private readonly giveUpMs: number,
  ) {}

  /** A round's view of the members: the live ones and, among them, the suspects. */
  observe(live: readonly string[], suspects: ReadonlySet<string> | ReadonlyMap<string, unknown>): void {
    for (const m of live) {
      if (suspects.has(m)) this.wentSilent.add(m);
      else this.wentSilent.delete(m);
    }
  }

  /** A lease seen held by `owner` (or held by this node). */
  seen(slot: number, owner: string): void {
    this.lastOwner.set(slot, owner);
    this.freeSince.delete(slot);
    if (owner !== this.nodeId) this.beyondShare.delete(slot);
  }

  /**
   * A free slot (no lease in Redis) whose preferred owner is `pref`, another member.
   * `gone(node)`: the node is no longer a live member, or it is a suspect (silent past 1.5 rounds).
   */
  decide(slot: number, pref: string, now: number, gone: (node: string) => boolean): OrphanDecision {
    const last = this.lastOwner.get(slot);
    if (last === undefined || !gone(last)) return { kind: 'regular' };
    const since = this.freeSince.get(slot) ?? now;
    this.freeSince.set(slot, since);
    if (now - since > this.giveUpMs) return { kind: 'regular' };
    const grace = this.wentSilent.has(last) ? this.graceMs : this.handedBackGraceMs;
    if (gone(pref) || now - since >= grace) return { kind: 'take' };
    return { kind: 'wait', at: since + grace };
  }

  /** This node took `slot` beyond its fair share in the round run at Redis time `redisNow`. */
  tookBeyondShare(slot: number, redisNow: number): void {
    this.beyondShare.set(slot, redisNow);
  }

  /**
   * May this node hand `slot` back to its preferred owner, whose last heartbeat was at `prefSeen`
   * (Redis ms)? Not a slot taken beyond the share until that owner heartbeated after the take.
   */
  mayHandBack(slot: number, prefSeen: number | undefined): boolean {
    const took = this.beyondShare.get(slot);
    return took === undefined || (prefSeen !== undefined && prefSeen > took);
  }

  /** The slot became this node's fair share. */
  settled(slot: number): void {
    this.beyondShare.delete(slot);
  }

  /**
   * True while an orphan is still free and watched (after a failed take: a timeout under load, a
   * round soon tries again). Forgets the orphans watched for longer than `giveUpMs`.
   */
  pending(now: number): boolean {
    for (const [slot, since] of this.freeSince) if (now - since > this.giveUpMs) this.freeSince.delete(slot);
    return this.freeSince.size > 0;
  }
}
