/** The [cluster] redis_url forms: one Redis, Redis Cluster seeds, Sentinel (src/redis/url.ts parseRedisUrl). */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { validateConfig } from '../../src/config/index.js';
import { createRedisClient, parseRedisUrl } from '../../src/redis/index.js';
import { createLogger } from '../../src/log.js';

function refused(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

describe('parseRedisUrl', () => {
  it('one Redis, with credentials, database and TLS', () => {
    expect(parseRedisUrl('redis://127.0.0.1:7000')).toEqual({ nodes: [{ host: '127.0.0.1', port: 7000 }], username: undefined, password: undefined, db: 0, tls: false, sentinel: null });
    expect(parseRedisUrl('rediss://app:s%40cret@redis.internal/3')).toEqual({ nodes: [{ host: 'redis.internal', port: 6379 }], username: 'app', password: 's@cret', db: 3, tls: true, sentinel: null });
    expect(parseRedisUrl('redis://:pw@[::1]:7001').nodes).toEqual([{ host: '::1', port: 7001 }]);
  });
  it('Redis Cluster seed nodes', () => {
    expect(parseRedisUrl('redis://h1:7000,h2:7001,h3').nodes).toEqual([
      { host: 'h1', port: 7000 },
      { host: 'h2', port: 7001 },
      { host: 'h3', port: 6379 },
    ]);
  });
  it('Sentinels: their addresses (default port 26379), the primary name and the database', () => {
    const ep = parseRedisUrl('redis+sentinel://:datapw@s1:26380,s2,s3:5000/payments/2');
    expect(ep.sentinel).toEqual({ name: 'payments' });
    expect(ep.nodes).toEqual([
      { host: 's1', port: 26380 },
      { host: 's2', port: 26379 },
      { host: 's3', port: 5000 },
    ]);
    expect(ep.password).toBe('datapw');
    expect(ep.db).toBe(2);
    expect(ep.tls).toBe(false);
    expect(parseRedisUrl('rediss+sentinel://s1/mymaster')).toMatchObject({ tls: true, db: 0, sentinel: { name: 'mymaster' } });
  });
  it('malformed URLs are refused with a message that names the problem', () => {
    expect(refused(() => parseRedisUrl('http://h:1'))).toMatch(/invalid Redis URL "http:\/\/h:1".*redis\+sentinel:\/\//);
    expect(refused(() => parseRedisUrl('redis+sentinel://s1:26379'))).toMatch(/names no primary/);
    expect(refused(() => parseRedisUrl('redis+sentinel://s1:26379/'))).toMatch(/names no primary/);
    expect(refused(() => parseRedisUrl('redis://h:1/2/3'))).toMatch(/invalid Redis URL/);
    expect(refused(() => parseRedisUrl('redis://h:1/x'))).toMatch(/invalid database number "x"/);
    expect(refused(() => parseRedisUrl('redis+sentinel://s1/m/x'))).toMatch(/invalid database number "x"/);
    expect(refused(() => parseRedisUrl('redis://h:port'))).toMatch(/invalid host "h:port"/);
  });
  it('a Sentinel URL with the Redis Cluster client is refused', () => {
    const log = createLogger('silent', 't');
    expect(refused(() => createRedisClient({ url: 'redis+sentinel://s1/m', cluster: true, commandTimeoutMs: 1000, name: 't', log }))).toMatch(/cannot be used with 'cluster.redis_cluster = true'/);
  });
});

describe('[cluster] replica acknowledgements', () => {
  it('defaults: off, 1000 ms', () => {
    const c = validateConfig({});
    expect(c.cluster.min_replica_acks).toBe(0);
    expect(c.cluster.replica_ack_timeout_ms).toBe(1000);
    expect(c.cluster.redis_sentinel_password).toBe('');
  });
  it('range checks, and no WAIT with the Redis Cluster client', () => {
    expect(refused(() => validateConfig({ cluster: { min_replica_acks: -1 } }))).toContain("'cluster.min_replica_acks'");
    expect(refused(() => validateConfig({ cluster: { replica_ack_timeout_ms: 0 } }))).toContain("'cluster.replica_ack_timeout_ms'");
    expect(refused(() => validateConfig({ cluster: { min_replica_acks: 1, redis_cluster: true } }))).toMatch(/'cluster.min_replica_acks' is not supported with 'cluster.redis_cluster = true'/);
    expect(validateConfig({ cluster: { min_replica_acks: 2, replica_ack_timeout_ms: 250 } }).cluster).toMatchObject({ min_replica_acks: 2, replica_ack_timeout_ms: 250 });
  });
});
