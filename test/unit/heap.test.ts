import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MinHeap, TimeBuckets } from '../../src/scheduler/heap.js';

interface E {
  at: number;
  id: string;
  seq: number;
}

describe('TimeBuckets', () => {
  it('gives entries back by time, and in insertion order within one time', () => {
    const q = new TimeBuckets<E>();
    const items: E[] = [
      { at: 5, id: 'c', seq: 0 },
      { at: 3, id: 'b', seq: 1 },
      { at: 5, id: 'a', seq: 2 },
      { at: 3, id: 'a', seq: 3 },
      { at: 1, id: 'z', seq: 4 },
    ];
    for (const x of items) q.push(x);
    expect(q.size).toBe(5);
    const out: number[] = [];
    while (q.peek()) out.push(q.pop()!.seq);
    expect(out).toEqual([4, 1, 3, 0, 2]);
    expect(q.size).toBe(0);
    expect(q.pop()).toBeUndefined();
  });

  it('matches a stable sort under any interleaving of pushes and pops', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer({ min: 0, max: 20 }), fc.constant(-1)), { maxLength: 300 }), (ops) => {
        const q = new TimeBuckets<E>();
        let ref: E[] = [];
        let seq = 0;
        for (const op of ops) {
          if (op < 0) {
            const want = ref.shift();
            expect(q.peek()).toBe(want);
            expect(q.pop()).toBe(want);
          } else {
            const x = { at: op, id: String(seq), seq: seq++ };
            q.push(x);
            ref.push(x);
            ref = ref.sort((a, b) => a.at - b.at || a.seq - b.seq);
          }
          expect(q.size).toBe(ref.length);
        }
        while (ref.length > 0) expect(q.pop()).toBe(ref.shift());
        expect(q.peek()).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });

  it('a time emptied and pushed again comes back in order', () => {
    const q = new TimeBuckets<E>();
    q.push({ at: 10, id: 'a', seq: 0 });
    expect(q.pop()!.seq).toBe(0);
    q.push({ at: 20, id: 'b', seq: 1 });
    q.push({ at: 10, id: 'c', seq: 2 });
    expect(q.peek()!.seq).toBe(2);
    q.clear();
    expect(q.size).toBe(0);
    expect(q.peek()).toBeUndefined();
  });
});

describe('MinHeap', () => {
  it('orders by (at, id)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 10 }), fc.string({ maxLength: 3 }))), (xs) => {
        const h = new MinHeap<{ at: number; id: string }>();
        for (const [at, id] of xs) h.push({ at, id });
        const out: [number, string][] = [];
        for (let x = h.pop(); x; x = h.pop()) out.push([x.at, x.id]);
        const want = [...xs].sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
        expect(out).toEqual(want);
      }),
    );
  });
});
