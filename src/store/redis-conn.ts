/**
 * How the Redis store uses its connection: every call under guard() (Redis trouble becomes
 * StoreUnavailableError; a closed store refuses), writes under replicated() (WAIT for replicas),
 * and scripts run on a slot's key base or on one global key.
 *
 * Durability: a write is acknowledged once Redis acknowledged it. Run Redis with `appendonly yes`
 * and `appendfsync always` (each write is fsynced before Redis replies; the tests use this): then
 * neither a Redis crash nor a power loss loses an acknowledged task. With `appendfsync everysec`
 * a crash of the Redis process loses nothing either (the AOF is written before the reply), but an
 * OS crash or power loss can lose up to about one second of acknowledged writes. With replicas,
 * `replicaAcks` makes task writes and fire commits and claims wait for replicas' confirmations
 * (WAIT) as well, so a failover to a replica does not lose them.
 */
import type { Redis } from 'ioredis';
import { StoreUnavailableError } from '../errors.js';
import { toStoreError, type RedisClient } from '../redis/connection.js';
import { RedisKeys } from '../redis/keys.js';
import { evalScript, luaScripts, script } from '../redis/scripts.js';

export interface StoreConnectionOptions {
  client: RedisClient;
  /** Key prefix (the hash tags are `{<prefix>:<slot>}`). */
  prefix: string;
  /** Whether close() quits the client (default true). */
  ownsClient?: boolean;
  /**
   * Replicas that must confirm a task write or a fire commit (WAIT) before it is acknowledged or
   * acted on; fewer within `timeoutMs` fail the operation as unavailable. Count 0: no WAIT.
   */
  replicaAcks?: { count: number; timeoutMs: number };
}

export class StoreConnection {
  readonly client: RedisClient;
  readonly keys: RedisKeys;
  private closing: Promise<void> | null = null;

  constructor(private readonly o: StoreConnectionOptions) {
    this.client = o.client;
    this.keys = new RedisKeys(o.prefix);
    luaScripts(); // fail at construction when the scripts are missing
  }

  /** Runs a slot script (its one key: the slot's key base). */
  run(name: string, slot: number, args: readonly (string | number)[]): Promise<unknown> {
    return evalScript(this.client, script(name), [this.keys.slot(slot)], args);
  }

  /** Runs a script on one global key (idempotency claims). */
  runOn(name: string, key: string, args: readonly (string | number)[]): Promise<unknown> {
    return evalScript(this.client, script(name), [key], args);
  }

  /**
   * Runs the write `fn` under guard(), then, with replicaAcks set, waits until that many replicas
   * confirm every write sent on this connection so far (WAIT; it covers `fn`'s writes, which went
   * first on the same connection). Too few confirmations: StoreUnavailableError. The write stands
   * on the primary; what it means for each caller is in the README ("When Redis fails").
   */
  replicated<T>(fn: () => Promise<T>): Promise<T> {
    const acks = this.o.replicaAcks;
    if (!acks || acks.count === 0) return this.guard(fn);
    return this.guard(async () => {
      const r = await fn();
      const n = await (this.client as Redis).wait(acks.count, acks.timeoutMs);
      if (n < acks.count) {
        throw new StoreUnavailableError(`the write reached the Redis primary, but ${n} of the ${acks.count} replicas required ('cluster.min_replica_acks') confirmed it within ${acks.timeoutMs} ms`);
      }
      return r;
    });
  }

  /** Runs `fn`, mapping Redis trouble to StoreUnavailableError. */
  async guard<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closing) throw new StoreUnavailableError('store is closed');
    try {
      return await fn();
    } catch (e) {
      throw toStoreError(e);
    }
  }

  async ping(): Promise<boolean> {
    if (this.closing || this.client.status !== 'ready') return false;
    try {
      return (await this.client.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  /** Quits the client (when owned). Safe to call twice: returns the same promise. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.o.ownsClient === false) return;
      try {
        await this.client.quit();
      } catch {
        this.client.disconnect();
      }
    })();
    return this.closing;
  }
}
