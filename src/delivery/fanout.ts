/**
 * Sends one fire along its route (src/delivery/routing.ts): to its own URL, with failover over
 * several, or as a broadcast whose shards go out together and whose outcome sums theirs.
 */
import type { ShardResult } from '../task/index.js';
import type { DeliveryHooks, DeliveryJob, DeliveryResult } from './types.js';
import { OWN_URL, type Route } from './routing.js';

/** What sending needs of the delivery service. */
export interface Sender {
  deliver(job: DeliveryJob, hooks?: DeliveryHooks): Promise<DeliveryResult>;
}

/** The outcome of a routed fire; `shards`: one per URL of a broadcast (null otherwise). */
export interface RoutedResult {
  result: DeliveryResult;
  shards: ShardResult[] | null;
}

/** The longest error text of a broadcast's summed outcome. */
const MAX_ERROR_CHARS = 2000;

/**
 * Sends `job` along `route`. `hooks.onAttempt` follows the first shard of a broadcast (one run
 * record); `hooks.beforeAttempt` is shared by every shard.
 */
export async function sendRouted(sender: Sender, job: DeliveryJob, route: Route, hooks: Pick<DeliveryHooks, 'onAttempt' | 'beforeAttempt'>): Promise<RoutedResult> {
  if (route === OWN_URL) return { result: await sender.deliver(job, hooks), shards: null }; // the job's own url
  if (route.mode !== 'broadcast') {
    const failover_urls = route.mode === 'failover' ? route.urls : undefined;
    return { result: await sender.deliver({ ...job, url: route.urls[0]!, failover_urls }, hooks), shards: null };
  }
  const total = route.urls.length;
  const results = await Promise.all(
    route.urls.map((url, index) =>
      sender.deliver(
        { ...job, url, extra_headers: { ...job.extra_headers, 'x-xcron-shard-index': String(index), 'x-xcron-shard-total': String(total) } },
        index === 0 ? hooks : { beforeAttempt: hooks.beforeAttempt },
      ),
    ),
  );
  const shards = results.map((r, index) => ({ index, url: route.urls[index]!, ok: r.ok, attempts: r.attempts, http_status: r.status, error: r.error }));
  const failed = shards.filter((x) => !x.ok);
  const first = results[0]!;
  const result: DeliveryResult = {
    ...first,
    ok: failed.length === 0,
    aborted: results.some((r) => r.aborted),
    attempts: Math.max(...results.map((r) => r.attempts)),
    end_time: Math.max(...results.map((r) => r.end_time)),
    error: failed.length === 0 ? null : `${failed.length} of ${total} shards failed: ${failed.map((x) => `#${x.index} ${x.error ?? ''}`).join('; ')}`.slice(0, MAX_ERROR_CHARS),
    status: failed.length === 0 ? first.status : (failed[0]!.http_status ?? null),
  };
  return { result, shards };
}
