/** A binary min-heap of timer entries ordered by (at, id). */
export interface HeapEntry {
  at: number;
  id: string;
}

const less = (a: HeapEntry, b: HeapEntry): boolean => a.at < b.at || (a.at === b.at && a.id < b.id);

export class MinHeap<T extends HeapEntry> {
  private readonly a: T[] = [];

  get size(): number {
    return this.a.length;
  }
  peek(): T | undefined {
    return this.a[0];
  }
  push(x: T): void {
    const a = this.a;
    a.push(x);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  pop(): T | undefined {
    const a = this.a;
    if (a.length === 0) return undefined;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && less(a[l]!, a[m]!)) m = l;
        if (r < a.length && less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
  /** Removes every entry for which `drop` is true (O(n)). */
  filter(keep: (x: T) => boolean): void {
    const kept = this.a.filter(keep);
    this.a.length = 0;
    for (const x of kept) this.push(x);
  }
  clear(): void {
    this.a.length = 0;
  }
}

/**
 * A queue of entries by time, for many entries due at the same millisecond (a burst of held fires):
 * one bucket per distinct time, in insertion order, and a min-heap of the distinct times. Taking
 * the next entry of a bucket is O(1); only a new time costs O(log distinct times). Entries of one
 * time come out in the order they went in.
 */
export class TimeBuckets<T extends { at: number }> {
  private readonly buckets = new Map<number, { items: T[]; head: number }>();
  /** The distinct times, a binary min-heap. */
  private readonly times: number[] = [];
  private count = 0;
  private first: { items: T[]; head: number } | undefined;

  get size(): number {
    return this.count;
  }

  push(x: T): void {
    let b = this.buckets.get(x.at);
    if (!b) {
      b = { items: [], head: 0 };
      this.buckets.set(x.at, b);
      this.pushTime(x.at);
      if (this.times[0] === x.at) this.first = b;
    }
    b.items.push(x);
    this.count++;
  }

  peek(): T | undefined {
    const b = this.first;
    return b ? b.items[b.head] : undefined;
  }

  pop(): T | undefined {
    const b = this.first;
    if (!b) return undefined;
    const x = b.items[b.head]!;
    b.items[b.head++] = undefined as unknown as T;
    this.count--;
    if (b.head === b.items.length) {
      this.buckets.delete(this.popTime());
      this.first = this.times.length > 0 ? this.buckets.get(this.times[0]!) : undefined;
    }
    return x;
  }

  clear(): void {
    this.buckets.clear();
    this.times.length = 0;
    this.count = 0;
    this.first = undefined;
  }

  private pushTime(t: number): void {
    const a = this.times;
    let i = a.length;
    a.push(t);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]! <= t) break;
      a[i] = a[p]!;
      i = p;
    }
    a[i] = t;
  }

  private popTime(): number {
    const a = this.times;
    const top = a[0]!;
    const last = a.pop()!;
    const n = a.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const m = r < n && a[r]! < a[l]! ? r : l;
        if (a[m]! >= last) break;
        a[i] = a[m]!;
        i = m;
      }
      a[i] = last;
    }
    return top;
  }
}
