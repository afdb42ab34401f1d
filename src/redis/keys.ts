/**
 * Every Redis key xcron uses, made in one place (TypeScript side; the Lua scripts receive a slot's
 * key base or a global key and derive the rest inside, see src/redis/lua/README.md).
 *
 * Key layout (B = `{<prefix>:<slot>}`, the slot's key base and hash tag: every key of a slot shares
 * it, so every per-slot script also works on Redis Cluster):
 *   B:lease            "<epoch>|<node>" with PX = the slot lease (RedisOwnership)
 *   B:epoch            the fencing token: raised by each take of the lease (to Redis's clock in ms,
 *                      or by one; acquire-1.lua)
 *   B:t:<id>           task hash (scalars as text, other fields as `j:<name>` JSON; null = absent)
 *   B:ids, B:st:<s>    every id / ids by state (score 0, lexicographic) for listTasks and stats
 *   B:due              active tasks by next_fire_time
 *   B:r:<run_id>       run hash
 *   B:runs:<task_id>   a task's runs by scheduled_time (history)
 *   B:open             unfinished runs by scheduled_time (the outbox)
 *   B:done             finished runs by creation time (retention)
 *   B:completed        completed tasks by update_time (purgeCompleted)
 *   B:runstat          run counts by status
 *   B:all              every run by scheduled_time (runs across tasks, GET /xcron/runs)
 *   B:fail             FAIL runs by scheduled_time (failures and the dead-letter list)
 *   B:rep:<day>        the daily report's tallies of a UTC day (status and lateness-bucket counts)
 *   B:log:<run_id>     a run's log lines ("<time>|<line>", seq = position + 1), B:logm:<run_id> totals
 * Global keys, each written by a one-key command of its own (never in a slot script):
 *   {<prefix>}:slots, {<prefix>}:members, {<prefix>}:idem:<key> (idempotency key -> task id),
 *   {<prefix>}:secret:<name> (sharedSecret), {<prefix>}:graph (the child graph: task id -> its
 *   on_success edges; graphReserve-1.lua / graphSettle-1.lua take it as their one key),
 *   {<prefix>}:exec (the executor registry: a hash "<group>\n<address>" -> instance; the exec*
 *   scripts take it as their one key and derive {<prefix>}:exec:exp, the fields by expiry, and
 *   {<prefix>}:exec:g:<group>, a group's addresses by expiry; see src/redis/lua/_exec.lua).
 * Flow limits, one hash tag per flow key F (`{<prefix>:flow:F}`, flowAcquire-1.lua): `:rate` (the
 *   admissions of the rate window, by time) and `:par` (the runs holding a parallelism permit, by
 *   the expiry of their lease).
 * The pub/sub channel of task changes: `<prefix>:changes`.
 */
export class RedisKeys {
  constructor(readonly prefix: string) {}

  /** A slot's key base `{<prefix>:<slot>}`: the one key every slot script takes. */
  slot(slot: number): string {
    return `{${this.prefix}:${slot}}`;
  }

  /** The slot's lease: "<epoch>|<node>". */
  lease(slot: number): string {
    return `${this.slot(slot)}:lease`;
  }

  /** The slot's fencing epoch. */
  epoch(slot: number): string {
    return `${this.slot(slot)}:epoch`;
  }

  /** A task's hash. */
  task(slot: number, taskId: string): string {
    return `${this.slot(slot)}:t:${taskId}`;
  }

  /** A run's hash. */
  run(slot: number, runId: string): string {
    return `${this.slot(slot)}:r:${runId}`;
  }

  /** A run's log lines. */
  runLog(slot: number, runId: string): string {
    return `${this.slot(slot)}:log:${runId}`;
  }

  /** A run's log totals. */
  runLogTotals(slot: number, runId: string): string {
    return `${this.slot(slot)}:logm:${runId}`;
  }

  /** The cluster's slot count, fixed by the first node. */
  slotCount(): string {
    return this.global('slots');
  }

  /** The member heartbeats. */
  members(): string {
    return this.global('members');
  }

  /** An idempotency key's claim: the id of the task holding it. */
  idempotency(key: string): string {
    return this.global(`idem:${key}`);
  }

  /** The child graph (on_success) of every task: one hash, so one script can check and change it (RedisChildGraph). */
  childGraph(): string {
    return this.global('graph');
  }

  /** A secret shared by every node (sharedSecret). */
  secret(name: string): string {
    return this.global(`secret:${name}`);
  }

  /** A flow key's base `{<prefix>:flow:<key>}`: the one key of flowAcquire and flowRelease. */
  flow(key: string): string {
    return `{${this.prefix}:flow:${key}}`;
  }

  /** The executor registry's hash (the exec* scripts' one key; src/store/redis-executors.ts). */
  executors(): string {
    return this.global('exec');
  }

  /** The pub/sub channel of task changes (a channel, not a key: no hash tag). */
  changes(): string {
    return `${this.prefix}:changes`;
  }

  /** A cluster-wide key: `{<prefix>}:<name>`. */
  private global(name: string): string {
    return `{${this.prefix}}:${name}`;
  }
}
