/** Which listen addresses count as loopback, when an open address is refused, and how a Redis URL is shown. */
import { describe, expect, it } from 'vitest';
import { isLoopbackHost, openBindRefusal } from '../../src/config/exposure.js';
import { redactRedisUrl } from '../../src/redis/url.js';

describe('isLoopbackHost', () => {
  it('loopback: 127.0.0.0/8, ::1 in any spelling, IPv4-mapped 127/8, localhost', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST', 'api.localhost']) expect(isLoopbackHost(h), h).toBe(true);
  });
  it('not loopback: every-interface addresses, private and public addresses, other names', () => {
    for (const h of ['0.0.0.0', '::', '10.0.0.5', '192.168.1.10', '8.8.8.8', 'fe80::1', '::ffff:10.0.0.1', 'myhost', 'localhost.example.com', '128.0.0.1']) expect(isLoopbackHost(h), h).toBe(false);
  });
});

describe('openBindRefusal', () => {
  it('refuses an open address without tokens unless allow_open, naming the three ways out', () => {
    const why = openBindRefusal('0.0.0.0', 0, false);
    expect(why).toMatch(/'http_host' is "0\.0\.0\.0", an address other machines can reach, and no API tokens are configured/);
    expect(why).toContain('XCRON_AUTH_TOKENS');
    expect(why).toContain('XCRON_HTTP_HOST');
    expect(why).toContain('XCRON_ALLOW_OPEN=true');
    expect(openBindRefusal('0.0.0.0', 1, false)).toBeNull();
    expect(openBindRefusal('0.0.0.0', 0, true)).toBeNull();
    expect(openBindRefusal('127.0.0.1', 0, false)).toBeNull();
    expect(openBindRefusal('10.0.0.5', 0, false)).not.toBeNull();
  });
});

describe('redactRedisUrl', () => {
  it('hides the password and keeps the rest', () => {
    expect(redactRedisUrl('redis://:pw@h:6379/0')).toBe('redis://:***@h:6379/0');
    expect(redactRedisUrl('rediss://user:pw@h1:1,h2:2')).toBe('rediss://user:***@h1:1,h2:2');
    expect(redactRedisUrl('redis+sentinel://pw@s1:26379/main')).toBe('redis+sentinel://***@s1:26379/main');
    expect(redactRedisUrl('redis://h:6379')).toBe('redis://h:6379');
  });
});
