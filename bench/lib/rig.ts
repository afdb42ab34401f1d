/**
 * The set-up every single-server bench repeats: a temp data dir, the callback receiver (its own
 * process), the server spawned on that dir, a keep-alive pool to its API; and at the end the
 * server stopped with its warn/error log lines reported, then everything torn down (also when the
 * bench throws).
 */
import { fmt, line, makeTempDir, serverLogSummary, serverPool, startServer, teardown, type ServerHandle, type ServerOptions } from './common.js';
import { Receiver } from './receiver-client.js';

export interface Rig {
  readonly dir: string;
  readonly server: ServerHandle;
  readonly pool: ReturnType<typeof serverPool>;
  /**
   * Stops the server (once; teardown then leaves it alone) and prints its warn/error log lines,
   * adding a note when there were any. Returns how many.
   */
  stopServer(notes: string[]): Promise<number>;
}

export interface RigOptions {
  /** API connections of the pool (default 64). */
  connections?: number;
  server?: Omit<ServerOptions, 'name' | 'dataDir'>;
}

/** Runs `fn` with a server, a receiver and a pool (see the module comment). */
export async function withRig<T>(name: string, o: RigOptions & { receiver: { parseJson?: boolean } }, fn: (rig: Rig & { receiver: Receiver }) => Promise<T>): Promise<T>;
/** Runs `fn` with a server and a pool, no receiver. */
export async function withRig<T>(name: string, o: RigOptions, fn: (rig: Rig) => Promise<T>): Promise<T>;
export async function withRig<T>(name: string, o: RigOptions & { receiver?: { parseJson?: boolean } }, fn: (rig: Rig & { receiver: Receiver }) => Promise<T>): Promise<T> {
  const dir = makeTempDir(name);
  let receiver: Receiver | null = null;
  let server: ServerHandle | null = null;
  let pool: ReturnType<typeof serverPool> | null = null;
  try {
    if (o.receiver) receiver = await Receiver.start(o.receiver);
    const s = (server = await startServer({ name, dataDir: dir, ...o.server }));
    line('server ready', `${fmt(s.readyMs, 0)} ms (pid ${s.pid})`);
    pool = serverPool(s.baseUrl, o.connections ?? 64);
    const stopServer = async (notes: string[]): Promise<number> => {
      server = null;
      await s.stop();
      const log = serverLogSummary(s.logFile);
      if (log.lines > 0) {
        line('server warn/error log lines', `${log.lines}: ${log.top.map((t) => `${t.count}x ${t.msg}`).join('; ')}`);
        notes.push(`server logged ${log.lines} warn/error lines`);
      }
      return log.lines;
    };
    return await fn({ dir, server: s, pool, receiver: receiver as Receiver, stopServer });
  } finally {
    await teardown({ pool, server, receiver, dir });
  }
}
