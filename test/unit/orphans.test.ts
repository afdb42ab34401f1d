/**
 * OrphanWatch (src/cluster/orphans.ts), the decisions alone: when a free slot whose owner went away
 * is taken beyond the fair share, and when such a slot may be handed back. Times are plain numbers
 * (monotonic ms, Redis ms); the rounds against a real Redis are in test/cluster/ownership.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { OrphanWatch } from '../../src/cluster/orphans.js';

const GRACE = 150;
const HANDED_BACK_GRACE = 900;
const GIVE_UP = 3000;

/** c's watch, with a killed (silent) and b live; `silent` lists the members counted as gone. */
function watch(): OrphanWatch {
  const w = new OrphanWatch('c', GRACE, HANDED_BACK_GRACE, GIVE_UP);
  w.observe(['a', 'b', 'c'], new Set<string>());
  w.seen(1, 'a');
  w.seen(2, 'b');
  return w;
}
const goneOf =
  (...silent: string[]) =>
  (m: string): boolean =>
    silent.includes(m);

describe('OrphanWatch', () => {
  it('a slot of a member that went silent: the chosen owner gets the short grace, then the others take it', () => {
    const w = watch();
    w.observe(['a', 'b', 'c'], new Set(['a'])); // a missed its heartbeats: a suspect
    expect(w.decide(1, 'b', 1000, goneOf('a'))).toEqual({ kind: 'wait', at: 1000 + GRACE });
    expect(w.decide(1, 'b', 1000 + GRACE - 1, goneOf('a'))).toEqual({ kind: 'wait', at: 1000 + GRACE });
    expect(w.decide(1, 'b', 1000 + GRACE, goneOf('a'))).toEqual({ kind: 'take' });
  });

  it('taken at once when the chosen owner is silent too', () => {
    const w = watch();
    w.observe(['a', 'b', 'c'], new Set(['a', 'b']));
    expect(w.decide(1, 'b', 1000, goneOf('a', 'b'))).toEqual({ kind: 'take' });
  });

  it('a member that left on purpose (never silent): the chosen owner gets a round and a half', () => {
    const w = watch();
    expect(w.decide(1, 'b', 1000, goneOf('a'))).toEqual({ kind: 'wait', at: 1000 + HANDED_BACK_GRACE });
    expect(w.decide(1, 'b', 1000 + HANDED_BACK_GRACE, goneOf('a'))).toEqual({ kind: 'take' });
  });

  it('the regular rule for a slot whose last owner is live (handed back for a rebalance), one never seen owned, and after the watch ends', () => {
    const w = watch();
    expect(w.decide(2, 'a', 1000, goneOf())).toEqual({ kind: 'regular' });
    expect(w.decide(7, 'b', 1000, goneOf('a'))).toEqual({ kind: 'regular' });
    w.observe(['a', 'b', 'c'], new Set(['a']));
    expect(w.decide(1, 'b', 1000, goneOf('a'))).toMatchObject({ kind: 'wait' });
    expect(w.pending(1000)).toBe(true);
    expect(w.decide(1, 'b', 1000 + GIVE_UP + 1, goneOf('a'))).toEqual({ kind: 'regular' });
    expect(w.pending(1000 + GIVE_UP + 1)).toBe(false);
  });

  it('a slot seen owned again is no longer watched', () => {
    const w = watch();
    w.observe(['a', 'b', 'c'], new Set(['a']));
    expect(w.decide(1, 'b', 1000, goneOf('a'))).toMatchObject({ kind: 'wait' });
    w.seen(1, 'b'); // the chosen owner took it
    expect(w.pending(1001)).toBe(false);
    expect(w.decide(1, 'a', 1001, goneOf())).toEqual({ kind: 'regular' });
  });

  it('a slot taken beyond the share goes back only once its chosen owner heartbeated after the take', () => {
    const w = watch();
    w.tookBeyondShare(1, 50_000);
    expect(w.mayHandBack(1, undefined)).toBe(false);
    expect(w.mayHandBack(1, 49_990)).toBe(false); // b's last heartbeat was before the take: frozen
    expect(w.mayHandBack(1, 50_600)).toBe(true);
    expect(w.mayHandBack(3, 10)).toBe(true); // a slot of this node's fair share: the regular rule
    w.settled(1);
    expect(w.mayHandBack(1, 10)).toBe(true);
    w.tookBeyondShare(1, 60_000);
    w.seen(1, 'b'); // another node holds it now
    expect(w.mayHandBack(1, 10)).toBe(true);
  });
});
