/**
 * The set-up of a dashboard test file in real Chromium (./browser.ts), registered as vitest hooks:
 * before all, Chromium is required, the server built and an HTTP receiver started; after each test,
 * the tabs it opened are closed and the servers it started stopped (a failed test first keeps a
 * screenshot of each tab and prints the servers' log tails); after all, the receiver is closed and
 * the temporary directories removed.
 */
import { afterAll, afterEach, beforeAll } from 'vitest';
import { DESKTOP, openTab, requireChromium, shot, type Size, type Tab } from './browser.js';
import { Receiver } from './receiver.js';
import { cleanupTempDirs, ensureBuilt, stopAllServers, takeStarted } from './server.js';

export interface BrowserSuite {
  /** The file's HTTP receiver (started before the first test). */
  readonly receiver: Receiver;
  /** Opens a tab at `size` (desktop by default) in time zone `tz`; it is closed after the test. */
  open(size?: Size, tz?: string): Promise<Tab>;
}

/** Registers the hooks of a dashboard test file; call it once at the top of the file. */
export function browserSuite(): BrowserSuite {
  let receiver: Receiver | undefined;
  const tabs: Tab[] = [];

  beforeAll(async () => {
    requireChromium();
    ensureBuilt();
    receiver = await Receiver.start();
  }, 600_000);

  afterEach(async (ctx) => {
    const servers = takeStarted();
    if (ctx.task.result?.state === 'fail') {
      for (const [i, t] of tabs.entries()) await shot(t.page, `failure-${ctx.task.name.replace(/\W+/g, '-').slice(0, 60)}-${i}`).catch(() => undefined);
      for (const s of servers) console.log(s.tail());
    }
    await Promise.all(tabs.splice(0).map((t) => t.ctx.close()));
    await stopAllServers();
  });

  afterAll(async () => {
    await receiver?.close();
    cleanupTempDirs();
  });

  return {
    get receiver(): Receiver {
      if (!receiver) throw new Error('the receiver starts in beforeAll: use it inside a test');
      return receiver;
    },
    async open(size: Size = DESKTOP, tz?: string): Promise<Tab> {
      const t = await openTab(size, tz);
      tabs.push(t);
      return t;
    },
  };
}
