/** Configuration: defaults, XCRON_* overrides, validation errors, the TOML file (src/config). */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { VERSION, applyEnv, loadConfig, validateConfig } from '../../src/config/index.js';

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

const fromEnv = (env: Record<string, string>) => validateConfig(applyEnv({}, env));

describe('defaults', () => {
  it('an empty configuration gets the documented defaults', () => {
    const c = validateConfig({});
    expect(c.http_host).toBe('127.0.0.1');
    expect(c.allow_open).toBe(false);
    expect(c.callback.allow_loopback).toBe(false);
    expect(c.callback.allow_private).toBe(false);
    expect(c.cluster.connect_timeout_ms).toBe(30_000);
    expect(c.http_port).toBe(8000);
    expect(c.data_dir).toBe('./data');
    expect(c.default_timezone).toBe('UTC');
    expect(c.log_level).toBe('info');
    expect(c.scheduler.lookahead_ms).toBe(10_000);
    expect(c.scheduler.scan_interval_ms).toBe(1000);
    expect(c.scheduler.max_sleep_ms).toBe(30_000);
    expect(c.scheduler.misfire_threshold_ms).toBe(5000);
    expect(c.delivery.timeout_ms).toBe(10_000);
    expect(c.delivery.max_attempts).toBe(3);
    expect(c.delivery.per_origin_concurrency).toBe(256);
    expect(c.callback.body_limit).toBe(65_536);
    expect(c.callback.signing_secrets).toEqual([]);
    expect(c.store.sqlite_file).toBe('xcron.db');
    expect(c.store.synchronous).toBe('normal');
    expect(c.cluster.redis_url).toBe('');
    expect(c.cluster.slots).toBe(256);
  });

  it('derives node_id from the host name and port, and the user agent from the version', () => {
    const c = validateConfig({ http_port: 9100 });
    expect(c.node_id).toBe(`${hostname()}-9100`);
    expect(c.delivery.user_agent).toBe(`xcron/${VERSION}`);
  });

  it('the result is frozen, sections included', () => {
    const c = validateConfig({});
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.scheduler)).toBe(true);
    expect(Object.isFrozen(c.callback.signing_secrets)).toBe(true);
  });

  it('two configurations do not share (frozen) default sections', () => {
    validateConfig({});
    const b = validateConfig({ delivery: { user_agent: 'custom/1' } });
    expect(b.delivery.user_agent).toBe('custom/1');
    const c = validateConfig({});
    expect(c.delivery.user_agent).toBe(`xcron/${VERSION}`);
  });
});

describe('XCRON_* environment overrides', () => {
  it('XCRON_HTTP_PORT is coerced to a number', () => {
    const c = fromEnv({ XCRON_HTTP_PORT: '9090' });
    expect(c.http_port).toBe(9090);
    expect(typeof c.http_port).toBe('number');
    expect(fromEnv({ XCRON_HTTP_PORT: ' 9091 ' }).http_port).toBe(9091);
  });

  it('XCRON_DATA_DIR and XCRON_NODE_ID set strings', () => {
    const c = fromEnv({ XCRON_DATA_DIR: '/var/lib/xcron', XCRON_NODE_ID: 'node-a' });
    expect(c.data_dir).toBe('/var/lib/xcron');
    expect(c.node_id).toBe('node-a');
  });

  it('XCRON_CLUSTER_REDIS_URL sets a key inside the [cluster] section', () => {
    const c = fromEnv({ XCRON_CLUSTER_REDIS_URL: 'redis://127.0.0.1:6379/0' });
    expect(c.cluster.redis_url).toBe('redis://127.0.0.1:6379/0');
    expect(c.cluster.slots).toBe(256); // the rest of the section keeps its defaults
  });

  it('XCRON_SCHEDULER_LOOKAHEAD_MS overrides the file value, keeping the file`s other keys', () => {
    const raw = { scheduler: { lookahead_ms: 20_000, max_sleep_ms: 5000 } };
    const c = validateConfig(applyEnv(raw, { XCRON_SCHEDULER_LOOKAHEAD_MS: '60000' }));
    expect(c.scheduler.lookahead_ms).toBe(60_000);
    expect(c.scheduler.max_sleep_ms).toBe(5000);
    // applyEnv does not mutate its input
    expect(raw.scheduler.lookahead_ms).toBe(20_000);
  });

  it('booleans and lists are coerced', () => {
    expect(fromEnv({ XCRON_CLUSTER_REDIS_TLS: 'true' }).cluster.redis_tls).toBe(true);
    expect(fromEnv({ XCRON_CLUSTER_REDIS_TLS: '0' }).cluster.redis_tls).toBe(false);
    const secrets = ['0123456789abcdef', 'fedcba9876543210'];
    expect(fromEnv({ XCRON_CALLBACK_SIGNING_SECRETS: secrets.join(',') }).callback.signing_secrets).toEqual(secrets);
    expect(fromEnv({ XCRON_CALLBACK_SIGNING_SECRETS: JSON.stringify(secrets) }).callback.signing_secrets).toEqual(secrets);
  });

  it('XCRON_CONFIG (the file path) and non-XCRON variables are not settings', () => {
    const c = fromEnv({ XCRON_CONFIG: '/etc/xcron.toml', PATH: '/bin', HOME: '/root' });
    expect(c.http_port).toBe(8000);
  });

  it('an unknown XCRON_ variable throws naming it', () => {
    const e = configError(() => fromEnv({ XCRON_HTTP_PROT: '80' }));
    expect(e.message).toContain('XCRON_HTTP_PROT');
    expect(e.message).toMatch(/unknown setting/);
  });

  it('an unknown key inside a known section throws naming it', () => {
    expect(configError(() => fromEnv({ XCRON_SCHEDULER_LOOKAHEAD: '1' })).message).toContain('XCRON_SCHEDULER_LOOKAHEAD');
  });

  it('a value of the wrong type throws naming the variable', () => {
    const e = configError(() => fromEnv({ XCRON_HTTP_PORT: 'eighty' }));
    expect(e.message).toContain('XCRON_HTTP_PORT');
    expect(e.message).toMatch(/expected a number/);
    expect(configError(() => fromEnv({ XCRON_HTTP_PORT: '' })).message).toContain('XCRON_HTTP_PORT');
    expect(configError(() => fromEnv({ XCRON_CLUSTER_REDIS_TLS: 'maybe' })).message).toContain('XCRON_CLUSTER_REDIS_TLS');
  });

  it('an out-of-range value throws naming the key', () => {
    expect(configError(() => fromEnv({ XCRON_HTTP_PORT: '70000' })).message).toContain("'http_port'");
    expect(configError(() => fromEnv({ XCRON_HTTP_PORT: '80.5' })).message).toContain("'http_port'");
    expect(configError(() => fromEnv({ XCRON_SCHEDULER_LOOKAHEAD_MS: '500' })).message).toContain("'scheduler.lookahead_ms'");
  });
});

describe('validateConfig errors name the key', () => {
  it('an unknown top-level key', () => {
    const e = configError(() => validateConfig({ http_prot: 80 }));
    expect(e.message).toContain("'http_prot'");
    expect(e.message).toMatch(/unknown key/);
  });
  it('an unknown key in a section', () => {
    expect(configError(() => validateConfig({ scheduler: { lookahead: 5000 } })).message).toContain("'scheduler.lookahead'");
  });
  it('a wrong type', () => {
    expect(configError(() => validateConfig({ http_port: '8000' })).message).toContain("'http_port'");
    expect(configError(() => validateConfig({ cluster: { redis_tls: 'yes' } })).message).toContain("'cluster.redis_tls'");
    expect(configError(() => validateConfig({ log_level: 'loud' })).message).toContain("'log_level'");
  });
  it('an out-of-range value', () => {
    expect(configError(() => validateConfig({ http_port: -1 })).message).toContain("'http_port'");
    expect(configError(() => validateConfig({ scheduler: { max_sleep_ms: 60_000 } })).message).toContain("'scheduler.max_sleep_ms'");
    expect(configError(() => validateConfig({ cluster: { slots: 0 } })).message).toContain("'cluster.slots'");
  });
  it('a short signing secret', () => {
    expect(configError(() => validateConfig({ callback: { signing_secrets: ['short'] } })).message).toMatch(/callback\.signing_secrets/);
  });
  it('an unknown default timezone', () => {
    expect(configError(() => validateConfig({ default_timezone: 'Mars/Olympus' })).message).toContain("'default_timezone'");
  });
  it('cross-field rules', () => {
    expect(configError(() => validateConfig({ delivery: { backoff_ms: 5000, max_backoff_ms: 1000 } })).message).toContain('delivery.max_backoff_ms');
    expect(configError(() => validateConfig({ scheduler: { lookahead_ms: 2000, scan_interval_ms: 2000 } })).message).toContain('scheduler.scan_interval_ms');
  });
});

describe('loadConfig', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'xcron-config-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads a real TOML file and applies env on top', () => {
    const file = join(dir, 'xcron.toml');
    writeFileSync(
      file,
      [
        'http_port = 9001',
        'node_id = "from-file"',
        'default_timezone = "Asia/Shanghai"',
        '',
        '[scheduler]',
        'lookahead_ms = 15000',
        '',
        '[cluster]',
        'redis_url = "redis://file:6379"',
        'slots = 64',
        '',
      ].join('\n'),
    );
    const c = loadConfig({ path: file, explicit: true, env: { XCRON_HTTP_PORT: '9002', XCRON_CLUSTER_REDIS_URL: 'redis://env:6379' } });
    expect(c.http_port).toBe(9002);
    expect(c.node_id).toBe('from-file');
    expect(c.default_timezone).toBe('Asia/Shanghai');
    expect(c.scheduler.lookahead_ms).toBe(15_000);
    expect(c.scheduler.scan_interval_ms).toBe(1000);
    expect(c.cluster.redis_url).toBe('redis://env:6379');
    expect(c.cluster.slots).toBe(64);
  });

  it('an unknown key in the file throws naming it', () => {
    const file = join(dir, 'xcron.toml');
    writeFileSync(file, '[delivery]\ntimeout = 5\n');
    const e = configError(() => loadConfig({ path: file, explicit: true, env: {} }));
    expect(e.message).toContain("'delivery.timeout'");
  });

  it('a wrong type in the file throws naming the key', () => {
    const file = join(dir, 'xcron.toml');
    writeFileSync(file, 'http_port = "8000"\n');
    expect(configError(() => loadConfig({ path: file, explicit: true, env: {} })).message).toContain("'http_port'");
  });

  it('invalid TOML throws naming the file', () => {
    const file = join(dir, 'broken.toml');
    writeFileSync(file, 'http_port = = 8000\n[scheduler\n');
    const e = configError(() => loadConfig({ path: file, explicit: true, env: {} }));
    expect(e.message).toContain(file);
    expect(e.message).toMatch(/not valid TOML/);
  });

  it('a missing file named explicitly is an error', () => {
    const file = join(dir, 'nope.toml');
    const e = configError(() => loadConfig({ path: file, explicit: true, env: {} }));
    expect(e.message).toContain(file);
    expect(e.message).toMatch(/cannot read config file/);
  });

  it('a missing default file is fine: defaults plus env', () => {
    const c = loadConfig({ path: join(dir, 'nope.toml'), explicit: false, env: { XCRON_HTTP_PORT: '7000' } });
    expect(c.http_port).toBe(7000);
    expect(c.data_dir).toBe('./data');
  });

  it('no path at all: defaults plus env', () => {
    expect(loadConfig({ path: undefined, explicit: false, env: { XCRON_NODE_ID: 'n1' } }).node_id).toBe('n1');
  });

  it('a path that is a directory is an error even when not explicit', () => {
    expect(configError(() => loadConfig({ path: dir, explicit: false, env: {} })).message).toMatch(/cannot read config file/);
  });
});
