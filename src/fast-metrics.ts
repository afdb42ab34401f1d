/**
 * Counters and histograms for the per-callback metrics, registered in a prom-client Registry and
 * printed by it exactly as prom-client's own, but bumped without prom-client's per-call work.
 *
 * prom-client hashes the label object and validates it on every inc()/observe(), also through
 * labels(): in a profile of a 20,000-callback burst that was about 80 ms of the main thread's
 * ~480 ms. Here `at(...)` finds a label combination's child with one Map lookup (a single label's
 * value is the key itself), and a bump is a few additions. Only what xcron needs: fixed label
 * names, non-negative counter increments.
 */
import type { Registry } from 'prom-client';

interface Value {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}
interface MetricValues {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: Value[];
  aggregator: 'sum';
}

abstract class FastMetric<C> {
  protected readonly children = new Map<string, { labels: Record<string, string>; child: C }>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
    registers: readonly Registry[],
  ) {
    for (const r of registers) r.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  protected abstract make(): C;

  /** The child of these label values (one per label name, in order), created on first use. */
  at(...values: string[]): C {
    const key = values.length === 1 ? values[0]! : values.join('\u0000');
    let e = this.children.get(key);
    if (e === undefined) {
      if (values.length !== this.labelNames.length) throw new Error(`${this.name}: ${this.labelNames.length} label values expected, got ${values.length}`);
      const labels: Record<string, string> = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i]!));
      e = { labels, child: this.make() };
      this.children.set(key, e);
    }
    return e.child;
  }

  abstract get(): MetricValues;

  /** Zeroes every child in place (children already handed out stay live). */
  reset(): void {
    for (const { child } of this.children.values()) this.zero(child);
  }

  protected abstract zero(child: C): void;
}

export class CounterChild {
  value = 0;
  inc(n = 1): void {
    this.value += n;
  }
}

export class FastCounter extends FastMetric<CounterChild> {
  readonly type = 'counter';

  constructor(o: { name: string; help: string; labelNames?: readonly string[]; registers: readonly Registry[] }) {
    super(o.name, o.help, o.labelNames ?? [], o.registers);
    if (!o.labelNames?.length) this.at(); // a counter without labels is printed from the start, as 0
  }

  protected make(): CounterChild {
    return new CounterChild();
  }

  get(): MetricValues {
    const values: Value[] = [];
    for (const { labels, child } of this.children.values()) values.push({ labels: { ...labels }, value: child.value });
    return { name: this.name, help: this.help, type: 'counter', values, aggregator: 'sum' };
  }

  protected zero(child: CounterChild): void {
    child.value = 0;
  }
}

export class HistogramChild {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }
  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    if (i < b.length) this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
}

export class FastHistogram extends FastMetric<HistogramChild> {
  readonly type = 'histogram';
  private readonly bounds: readonly number[];

  constructor(o: { name: string; help: string; labelNames?: readonly string[]; buckets: readonly number[]; registers: readonly Registry[] }) {
    super(o.name, o.help, o.labelNames ?? [], o.registers);
    this.bounds = [...o.buckets].sort((a, b) => a - b);
    if (!o.labelNames?.length) this.at(); // printed from the start, with zero counts
  }

  protected make(): HistogramChild {
    return new HistogramChild(this.bounds);
  }

  protected zero(child: HistogramChild): void {
    child.counts.fill(0);
    child.sum = 0;
    child.count = 0;
  }

  get(): MetricValues {
    const values: Value[] = [];
    for (const { labels, child } of this.children.values()) {
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += child.counts[i]!;
        values.push({ labels: { le, ...labels }, value: acc, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { le: '+Inf', ...labels }, value: child.count, metricName: `${this.name}_bucket` });
      values.push({ labels: { ...labels }, value: child.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...labels }, value: child.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' };
  }
}
