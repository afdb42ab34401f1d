/**
 * Idempotency keys in the Redis store. A key lives outside the task's slot (its own global key,
 * `{<prefix>}:idem:<key>` -> task id), so it is claimed with a one-key command of its own before
 * the task's slot script runs, and released when the create fails or the task is deleted.
 */
import { StoreUnavailableError } from '../errors.js';
import type { Task } from '../task/index.js';
import type { StoreConnection } from './redis-conn.js';

/**
 * Claims an idempotency key for `id` (SET NX, its own key: it lives outside the task's slot).
 * Returns the task already holding it, or null when the claim is ours. A claim pointing at no
 * task is a create in progress (waited for briefly) or one that failed half-way (taken over).
 */
export async function claimIdempotencyKey(conn: StoreConnection, key: string, id: string, get: (holder: string) => Promise<Task | null>): Promise<Task | null> {
  const k = conn.keys.idempotency(key);
  for (let attempt = 0; attempt < 20; attempt++) {
    if ((await conn.client.set(k, id, 'NX')) === 'OK') return null;
    const holder = await conn.client.get(k);
    if (holder === null) continue;
    const t = await get(holder);
    if (t) return t;
    if (attempt < 3) {
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    if ((await conn.runOn('setIfEq', k, [holder, id])) === 1) return null;
  }
  throw new StoreUnavailableError(`could not claim idempotency key ${JSON.stringify(key)}`);
}

/** Releases an idempotency key if `id` still holds it. */
export function releaseIdempotencyKey(conn: StoreConnection, key: string, id: string): Promise<unknown> {
  return conn.runOn('delIfEq', conn.keys.idempotency(key), [id]);
}
