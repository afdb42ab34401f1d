/**
 * The TaskStore contract, executor registry part (src/store/executors.ts): register (insert and
 * heartbeat), expiry by heartbeat time, unregister, live instances of a group, every group.
 * Run by each store's test file next to storeContract, on the same harness.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXPIRED_KEEP_MS, type ExecutorStore } from '../../src/store/executors.js';
import { T0 } from './fixtures.js';
import type { StoreHarness } from './store-contract.js';

export function storeExecutorsContract(name: string, make: () => Promise<StoreHarness>): void {
  describe(`TaskStore contract, executor registry: ${name}`, () => {
    let h: StoreHarness;
    let reg: ExecutorStore;
    beforeEach(async () => {
      h = await make();
      expect(h.store.executors).toBeDefined();
      reg = h.store.executors!;
    });
    afterEach(async () => {
      await h.cleanup();
    });

    it('registers, refreshes with a heartbeat (keeping registered_at), and lists live instances by address', async () => {
      const a = await reg.register({ group: 'billing', address: 'http://b.test/run', ttl_ms: 10_000, meta: { version: '1.2', n: 3 }, now: T0 });
      expect(a.created).toBe(true);
      expect(a.instance).toEqual({ group: 'billing', address: 'http://b.test/run', ttl_ms: 10_000, meta: { version: '1.2', n: 3 }, last_heartbeat: T0, registered_at: T0 });
      await reg.register({ group: 'billing', address: 'http://a.test/run|x', ttl_ms: 5_000, meta: null, now: T0 + 1 });
      await reg.register({ group: 'other', address: 'http://c.test/', ttl_ms: 5_000, meta: null, now: T0 + 1 });
      const beat = await reg.register({ group: 'billing', address: 'http://b.test/run', ttl_ms: 20_000, meta: { version: '1.3' }, now: T0 + 4_000 });
      expect(beat.created).toBe(false);
      expect(beat.instance.registered_at).toBe(T0);
      const live = await reg.live('billing', T0 + 4_500);
      expect(live.map((i) => i.address)).toEqual(['http://a.test/run|x', 'http://b.test/run']);
      expect(live[1]).toEqual({ group: 'billing', address: 'http://b.test/run', ttl_ms: 20_000, meta: { version: '1.3' }, last_heartbeat: T0 + 4_000, registered_at: T0 });
      expect(live[0]!.meta).toBeNull();
      expect(await reg.live('nobody', T0)).toEqual([]);
    });

    it('an instance that misses its ttl drops out of live, stays listed for a while, then is removed', async () => {
      await reg.register({ group: 'g', address: 'http://a.test/', ttl_ms: 1_000, meta: null, now: T0 });
      await reg.register({ group: 'g', address: 'http://b.test/', ttl_ms: 60_000, meta: null, now: T0 });
      expect((await reg.live('g', T0 + 999)).map((i) => i.address)).toEqual(['http://a.test/', 'http://b.test/']);
      expect((await reg.live('g', T0 + 1_000)).map((i) => i.address)).toEqual(['http://b.test/']);
      // Expired, still listed (the API shows it as not live).
      expect((await reg.list(T0 + 2_000)).map((i) => `${i.group} ${i.address}`)).toEqual(['g http://a.test/', 'g http://b.test/']);
      // A heartbeat after expiry brings it back.
      await reg.register({ group: 'g', address: 'http://a.test/', ttl_ms: 1_000, meta: null, now: T0 + 3_000 });
      expect((await reg.live('g', T0 + 3_500)).map((i) => i.address)).toEqual(['http://a.test/', 'http://b.test/']);
      // Expired for longer than EXPIRED_KEEP_MS: removed by the next list (b expired later, so it stays).
      const later = T0 + 3_000 + 1_000 + EXPIRED_KEEP_MS + 1;
      expect((await reg.list(later)).map((i) => i.address)).toEqual(['http://b.test/']);
      expect((await reg.register({ group: 'g', address: 'http://a.test/', ttl_ms: 1_000, meta: null, now: later })).created).toBe(true);
    });

    it('unregister removes one instance; every group is listed in order', async () => {
      await reg.register({ group: 'z', address: 'http://z.test/', ttl_ms: 5_000, meta: null, now: T0 });
      await reg.register({ group: 'a', address: 'http://2.test/', ttl_ms: 5_000, meta: null, now: T0 });
      await reg.register({ group: 'a', address: 'http://1.test/', ttl_ms: 5_000, meta: { k: 'v' }, now: T0 });
      expect(await reg.unregister('a', 'http://2.test/')).toBe(true);
      expect(await reg.unregister('a', 'http://2.test/')).toBe(false);
      expect(await reg.unregister('nope', 'http://1.test/')).toBe(false);
      expect((await reg.list(T0 + 1)).map((i) => `${i.group} ${i.address}`)).toEqual(['a http://1.test/', 'z http://z.test/']);
      expect((await reg.live('a', T0 + 1)).map((i) => i.address)).toEqual(['http://1.test/']);
    });
  });
}
