/**
 * The set-up shared by test files that drive the real built server, registered as vitest hooks.
 *
 * - `receiverPerTest`: the server is built before all; each test gets a fresh HTTP receiver; after
 *   each test the servers it started are stopped (a failed test first prints their log tails) and
 *   its receiver closed; after all, the temporary directories are removed.
 * - `sharedServer`: one receiver, one server and a client on it for the whole file; after a failed
 *   test the log tails of the servers it started are printed; after all, everything is stopped.
 */
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { XcronClient } from '../../clients/typescript/src/index.js';
import { Receiver } from './receiver.js';
import { XcronServer, cleanupTempDirs, ensureBuilt, stopAllServers, takeStarted } from './server.js';

/** What a hook set-up hands out once its `before` hook ran (reading it earlier throws). */
function late<T>(what: string): { get(): T; set(v: T): void } {
  let value: T | undefined;
  return {
    get: () => {
      if (value === undefined) throw new Error(`${what} is set up in a before hook: use it inside a test`);
      return value;
    },
    set: (v) => void (value = v),
  };
}

/** A fresh receiver per test, servers stopped after each (see the file's comment). `after`: more clean-up after each test. */
export function receiverPerTest(o: { after?: () => Promise<unknown> } = {}): { readonly receiver: Receiver } {
  const receiver = late<Receiver>('the receiver');
  beforeAll(() => {
    ensureBuilt();
  }, 600_000);
  beforeEach(async () => {
    receiver.set(await Receiver.start());
  });
  afterEach(async (ctx) => {
    const servers = takeStarted();
    if (ctx.task.result?.state === 'fail') for (const s of servers) console.log(s.tail());
    await stopAllServers();
    await receiver.get().close();
    await o.after?.();
  });
  afterAll(() => {
    cleanupTempDirs();
  });
  return {
    get receiver() {
      return receiver.get();
    },
  };
}

/** One receiver, server and client for the whole file (see the file's comment). `beforeStop`: clean-up before the server stops. */
export function sharedServer(o: { beforeStop?: () => Promise<unknown> } = {}): { readonly server: XcronServer; readonly recv: Receiver; readonly client: XcronClient } {
  const recv = late<Receiver>('the receiver');
  const server = late<XcronServer>('the server');
  const client = late<XcronClient>('the client');
  beforeAll(async () => {
    recv.set(await Receiver.start());
    server.set(await XcronServer.start());
    client.set(new XcronClient({ baseUrl: server.get().baseUrl }));
  });
  afterEach((ctx) => {
    const started = takeStarted();
    if (ctx.task.result?.state === 'fail') for (const s of started) console.log(s.tail(30));
  });
  afterAll(async () => {
    await o.beforeStop?.();
    await stopAllServers();
    await recv.get().close();
    cleanupTempDirs();
  });
  return {
    get server() {
      return server.get();
    },
    get recv() {
      return recv.get();
    },
    get client() {
      return client.get();
    },
  };
}
