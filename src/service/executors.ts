/**
 * The executor registry's operations (issue #22 item 3): register (the heartbeat), unregister and
 * the listing, with their rules: the group name, the address as a callback URL, the ttl bounds and
 * the size of `meta`. The registry lives in the store (src/store/executors.ts), so every node of a
 * cluster sees the same instances and a registration through any node counts.
 */
import type { Clock } from '../clock/index.js';
import { Codes, XcronError, describe } from '../errors.js';
import { isLive, type ExecutorInstance } from '../store/executors.js';
import type { TaskStore } from '../store/types.js';
import { checkExecutorGroup, checkUrl, isObject } from '../task/index.js';

export const MIN_TTL_MS = 1_000;
export const MAX_TTL_MS = 3_600_000;
/** The largest `meta` object, as JSON bytes. */
export const MAX_META_BYTES = 4096;

export interface ExecutorInput {
  group: string;
  address: string;
  ttl_ms: number;
  meta: Record<string, unknown> | null;
}

export interface ExecutorGroupView {
  group: string;
  live: number;
  instances: (ExecutorInstance & { expires_at: number; live: boolean })[];
}

/** The instance address: a callback URL (code 1026 when it is not one). */
export function checkExecutorAddress(v: unknown): string {
  try {
    return checkUrl(v, 'address');
  } catch (e) {
    if (e instanceof XcronError) throw new XcronError(Codes.EXECUTOR_ADDRESS, 400, e.message);
    throw e;
  }
}

/** Checks a registerExecutor body (fields already known to be group, address, ttl_ms, meta). */
export function parseRegistration(b: Record<string, unknown>): ExecutorInput {
  const group = checkExecutorGroup(b.group, 'group');
  const address = checkExecutorAddress(b.address);
  const ttl = b.ttl_ms;
  if (ttl === undefined || ttl === null) throw new XcronError(Codes.BAD_JSON, 400, `'ttl_ms' is required: how long the registration lasts without a heartbeat (${MIN_TTL_MS} to ${MAX_TTL_MS} ms)`);
  if (typeof ttl !== 'number' || !Number.isInteger(ttl)) throw new XcronError(Codes.BAD_JSON, 400, `'ttl_ms' must be an integer number of ms, got ${describe(ttl)}`);
  if (ttl < MIN_TTL_MS || ttl > MAX_TTL_MS) throw new XcronError(Codes.INVALID_OPTION, 400, `invalid 'ttl_ms': must be ${MIN_TTL_MS} to ${MAX_TTL_MS} ms, got ${ttl}`);
  let meta: Record<string, unknown> | null = null;
  if (b.meta !== undefined && b.meta !== null) {
    if (!isObject(b.meta)) throw new XcronError(Codes.BAD_JSON, 400, `'meta' must be a JSON object, got ${describe(b.meta)}`);
    const size = Buffer.byteLength(JSON.stringify(b.meta));
    if (size > MAX_META_BYTES) throw new XcronError(Codes.TOO_LARGE, 413, `'meta' is ${size} bytes of JSON, over the limit of ${MAX_META_BYTES} bytes`);
    meta = b.meta;
  }
  return { group, address, ttl_ms: ttl, meta };
}

export class ExecutorService {
  constructor(private readonly o: { store: TaskStore; clock: Clock }) {}

  private registry(): NonNullable<TaskStore['executors']> {
    const r = this.o.store.executors;
    if (!r) throw new XcronError(Codes.INTERNAL, 500, 'this store has no executor registry');
    return r;
  }

  register(input: ExecutorInput): ReturnType<NonNullable<TaskStore['executors']>['register']> {
    return this.registry().register({ ...input, now: this.o.clock.now() });
  }

  /** Removes an instance; 404 (code 1027) when it is not registered. */
  async unregister(group: string, address: string): Promise<void> {
    if (!(await this.registry().unregister(group, address))) {
      throw new XcronError(Codes.EXECUTOR_NOT_FOUND, 404, `no executor ${JSON.stringify(address.slice(0, 200))} is registered in group ${JSON.stringify(group)}`);
    }
  }

  /** Every group with its instances (live and recently expired), optionally just one group. */
  async list(group: string | null): Promise<{ now: number; groups: ExecutorGroupView[] }> {
    const now = this.o.clock.now();
    const groups = new Map<string, ExecutorGroupView>();
    for (const i of await this.registry().list(now)) {
      if (group !== null && i.group !== group) continue;
      let g = groups.get(i.group);
      if (!g) groups.set(i.group, (g = { group: i.group, live: 0, instances: [] }));
      const live = isLive(i, now);
      if (live) g.live++;
      g.instances.push({ ...i, expires_at: i.last_heartbeat + i.ttl_ms, live });
    }
    return { now, groups: [...groups.values()] };
  }
}
