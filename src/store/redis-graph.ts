/**
 * The child graph of the Redis store (on_success edges), guarded in Redis so that it holds across
 * nodes. Tasks live in per-slot keys, which one script cannot combine on Redis Cluster, so the
 * graph has a key of its own, `{<prefix>}:graph`, and a change of a task's children is three steps:
 *
 *   1. reserve (graphReserve-1.lua): on the graph key, atomically, refuse the change if the new
 *      children lead back to the task, else record them as a reservation of the task. Every check
 *      sees a task's recorded children plus all its reservations, a superset of what it stores.
 *   2. write the task (updateTask-1.lua) with the reservation's deadline: a write that would land
 *      later (a stalled node) is a conflict, and the caller starts again from step 1.
 *   3. settle (graphSettle-1.lua): drop the reservation and record what the write stored.
 *
 * A node that dies between the steps leaves a reservation; once expired (twice the write deadline,
 * so clock differences between Redis nodes up to that margin are covered) its children join the
 * recorded ones. The graph may then hold an edge the task no longer has, which can only refuse a
 * change, never let a cycle through; the task's next change of its children records them exactly.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { GraphRefusal } from './types.js';

/** A reservation's lifetime: after it, its children are folded into the recorded ones. */
const RESERVATION_TTL_MS = 60_000;
/** A task write guarded by a reservation must land within this long of the reservation. */
const WRITE_DEADLINE_MS = RESERVATION_TTL_MS / 2;

export interface GraphReservation {
  token: string;
  /** Redis time (ms) by which the task write must land. */
  deadline: number;
}

/** How the graph reaches Redis (given by the store: its connection and script loader). */
export interface GraphAccess {
  /** Runs a graph script on the graph key. */
  run(name: 'graphReserve' | 'graphSettle', args: readonly (string | number)[]): Promise<unknown>;
  /** HDEL of a task's field. */
  remove(id: string): Promise<unknown>;
  /** The graph key's marker that every stored task's children are in it (HGET / HSET of '#built'). */
  isBuilt(): Promise<boolean>;
  markBuilt(): Promise<unknown>;
  /** Every stored task with children (graphEdges-1.lua over all slots). */
  storedEdges(): Promise<[string, string[]][]>;
  log: Logger;
}

export class RedisChildGraph {
  private built: Promise<void> | null = null;

  constructor(private readonly redis: GraphAccess) {}

  /**
   * A store written before the graph existed: its tasks' children are added once (as a new task's
   * are, so writes meanwhile are not lost), then the graph is marked built. Every node that finds
   * it unmarked does this before its first check; doing it twice changes nothing.
   */
  private ensureBuilt(): Promise<void> {
    this.built ??= (async () => {
      if (await this.redis.isBuilt()) return;
      const edges = await this.redis.storedEdges();
      for (const [id, children] of edges) await this.settle(id, randomBytes(8).toString('hex'), 'new', children, true);
      await this.redis.markBuilt();
      this.redis.log.info({ tasks_with_children: edges.length }, 'child graph built from the stored tasks');
    })().catch((e: unknown) => {
      this.built = null; // retried by the next check
      throw e;
    });
    return this.built;
  }

  /** Step 1. `check` false: only record (a new task, which nothing can point at yet). */
  async reserve(id: string, children: readonly string[], check: boolean): Promise<GraphReservation | GraphRefusal> {
    if (check) await this.ensureBuilt();
    const token = randomBytes(8).toString('hex');
    const r = (await this.redis.run('graphReserve', [id, token, JSON.stringify(children), check ? '1' : '0', RESERVATION_TTL_MS])) as (number | string)[];
    if (r[0] === 0) return { refused: 'cycle', path: r.slice(1).map(String) };
    if (r[0] === 2) return { refused: 'too_large', path: [] };
    return { token, deadline: Number(r[1]) + WRITE_DEADLINE_MS };
  }

  /**
   * Step 3. `written`: the task write's rev and the children it stored, 'new' for a created task,
   * or null when nothing was written. A failure is logged: the reservation then expires into the
   * recorded children (see above).
   */
  async settle(id: string, token: string, written: { rev: number } | 'new' | null, children: readonly string[], rethrow = false): Promise<void> {
    const rev = written === null ? '' : written === 'new' ? '+' : String(written.rev);
    await this.redis.run('graphSettle', [id, token, rev, JSON.stringify(children), RESERVATION_TTL_MS]).catch((err: unknown) => {
      if (rethrow) throw err;
      this.redis.log.warn({ err, task_id: id }, 'could not settle a child-graph reservation; it expires into the graph');
    });
  }

  /** A deleted task leaves the graph (best effort: a leftover edge only refuses changes). */
  async drop(id: string): Promise<void> {
    await this.redis.remove(id).catch((err: unknown) => this.redis.log.warn({ err, task_id: id }, 'could not remove a deleted task from the child graph'));
  }
}
