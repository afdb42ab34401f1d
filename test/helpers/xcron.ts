/**
 * A validated Config for createXcron in tests: everything in a temp data dir, the store and the
 * delivery on the test's own thread (the worker threads run only from dist/), HTTP on 127.0.0.1
 * and a free port, logs silent, callbacks to loopback and private addresses allowed. `raw` is the config file as an object; its sections are merged
 * over these defaults key by key.
 */
import { validateConfig, type Config } from '../../src/config/index.js';

type Section = Record<string, unknown>;

export function testConfig(dataDir: string, raw: Record<string, unknown> = {}): Config {
  const section = (name: string, defaults: Section): Section => ({ ...defaults, ...((raw[name] as Section | undefined) ?? {}) });
  return validateConfig({
    node_id: 'test-node',
    http_host: '127.0.0.1',
    http_port: 0,
    log_level: 'silent',
    ...raw,
    data_dir: dataDir,
    store: section('store', { worker_thread: false }),
    // The test receivers listen on 127.0.0.1: callbacks to loopback and private addresses allowed
    // (refused by default); a test of the policy sets them itself.
    callback: section('callback', { allow_loopback: true, allow_private: true }),
    delivery: section('delivery', { worker_thread: false }),
  });
}
