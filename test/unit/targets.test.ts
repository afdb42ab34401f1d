/**
 * Queue targets without a broker: the configuration rules of [targets.<name>] and [results], the
 * task's `callback.target` validation, the internal target reference, and credential redaction.
 * (The sends themselves are tested against real brokers in test/targets/.)
 */
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/index.js';
import { redactUrl, scrub } from '../../src/delivery/targets/index.js';
import { Codes, XcronError } from '../../src/errors.js';
import { parseTargetUrl, targetUrl, validateCreate } from '../../src/task/index.js';

const limits = { defaultTimezone: 'UTC', callbackBodyLimit: 65_536, pastGraceMs: 1000, targets: new Set(['orders', 'billing']) };
const create = (callback: unknown): unknown => validateCreate({ type: 1, format: '* * * * *', callback }, Date.now(), limits);
const errorOf = (f: () => unknown): XcronError => {
  try {
    f();
  } catch (e) {
    if (e instanceof XcronError) return e;
    throw e;
  }
  throw new Error('expected an XcronError');
};

describe('[targets.<name>] and [results] configuration', () => {
  it('accepts each kind with its keys', () => {
    const cfg = validateConfig({
      targets: {
        orders: { kind: 'redis_stream', url: 'redis://:pw@127.0.0.1:6379/0', stream: 'orders' },
        billing: { kind: 'amqp', url: 'amqp://u:p@127.0.0.1:5672/v', exchange: 'billing', routing_key: 'inv' },
        reports: { kind: 'nats', url: 'nats://127.0.0.1:4222', subject: 'jobs.reports' },
      },
      results: { kind: 'redis_stream', url: 'redis://127.0.0.1:6379' },
    });
    expect(Object.keys(cfg.targets)).toEqual(['orders', 'billing', 'reports']);
    expect(cfg.targets.orders!.maxlen).toBe(0);
    expect(cfg.results.stream).toBe('xcron-results');
  });

  it.each([
    [{ orders: { kind: 'redis_stream', url: 'amqp://h', stream: 's' } }, "'targets.orders.url' must be a redis:// or rediss:// URL"],
    [{ orders: { kind: 'redis_stream', url: 'redis://h' } }, "'targets.orders.stream' is required"],
    [{ orders: { kind: 'amqp', url: 'amqp://h' } }, "needs 'exchange' or 'routing_key'"],
    [{ orders: { kind: 'nats', url: 'nats://h' } }, "'targets.orders.subject' is required"],
    [{ orders: { kind: 'kafka', url: 'kafka://h' } }, 'targets.orders.kind'],
    [{ 'bad name': { kind: 'nats', url: 'nats://h', subject: 's' } }, 'a target name is 1 to 64'],
    [{ orders: { kind: 'nats', url: 'nats://h', subject: 's', extra: 1 } }, "unknown key 'targets.orders.extra'"],
  ])('refuses %j', (targets, message) => {
    expect(() => validateConfig({ targets })).toThrow(message);
  });

  it('refuses a results URL of the wrong scheme', () => {
    expect(() => validateConfig({ results: { kind: 'amqp', url: 'redis://h' } })).toThrow("'results.url' must be a amqp:// or amqps:// URL");
  });

  it('accepts a NATS results consumer with its defaults, and refuses a stream name JetStream cannot hold', () => {
    const cfg = validateConfig({ results: { kind: 'nats', url: 'nats://127.0.0.1:4222' } });
    expect(cfg.results).toMatchObject({ kind: 'nats', stream: 'xcron-results', subject: 'xcron.results', group: 'xcron' });
    expect(() => validateConfig({ results: { kind: 'nats', url: 'amqp://h' } })).toThrow("'results.url' must be a nats:// or tls:// URL");
    expect(() => validateConfig({ results: { kind: 'nats', url: 'nats://h', stream: 'a.b' } })).toThrow("'results.stream' must be a JetStream stream name");
    expect(() => validateConfig({ results: { kind: 'nats', url: 'nats://h', subject: '' } })).toThrow("'results.stream' and 'results.subject' are required");
  });
});

describe('callback.target', () => {
  it('keeps the target (and key) as its internal reference', () => {
    const spec = (create({ target: 'orders', key: 'eu/1 x'.replace(' ', '_'), body: { a: 1 } }) as { spec: { callback: { url: string; body: unknown } } }).spec;
    expect(parseTargetUrl(spec.callback.url)).toEqual({ name: 'orders', key: 'eu/1_x' });
    expect(spec.callback.body).toEqual({ a: 1 });
    expect(parseTargetUrl(targetUrl('billing', null))).toEqual({ name: 'billing', key: null });
    expect(parseTargetUrl(targetUrl('billing', 'a?key=b&c%'))).toEqual({ name: 'billing', key: 'a?key=b&c%' });
    expect(parseTargetUrl('http://x/')).toBeNull();
  });

  it('refuses an unknown name with 1024, listing the configured ones', () => {
    const e = errorOf(() => create({ target: 'nope' }));
    expect(e.code).toBe(Codes.UNKNOWN_TARGET);
    expect(e.status).toBe(400);
    expect(e.message).toContain('billing, orders');
    const none = errorOf(() => validateCreate({ type: 1, format: '* * * * *', callback: { target: 'orders' } }, Date.now(), { ...limits, targets: new Set() }));
    expect(none.code).toBe(Codes.UNKNOWN_TARGET);
    expect(none.message).toContain('no queue targets are configured');
  });

  it.each([
    [{ target: 'orders', url: 'http://x/' }, 'callback.url'],
    [{ target: 'orders', headers: { a: 'b' } }, 'callback.headers'],
    [{ target: 'orders', method: 'GET' }, 'callback.method'],
    [{ target: 'orders', key: 'with space' }, 'callback.key'],
    [{ target: 'orders', key: '' }, 'callback.key'],
    [{ url: 'http://x/', key: 'k' }, 'callback.key'],
  ])('refuses %j with 1009 naming the field', (callback, field) => {
    const e = errorOf(() => create(callback));
    expect(e.code).toBe(Codes.INVALID_OPTION);
    expect(e.message).toContain(field);
  });

  it('refuses a non-string target with 1000', () => {
    expect(errorOf(() => create({ target: 5 })).code).toBe(Codes.BAD_JSON);
  });
});

describe('credential redaction', () => {
  it('masks the password of a URL and removes it from error texts', () => {
    expect(redactUrl('amqp://xcron:s3cr%40t@h:5672/v')).toBe('amqp://xcron:***@h:5672/v');
    expect(redactUrl('redis://h:6379')).toBe('redis://h:6379');
    const url = 'amqp://xcron:s3cr%40t@h:5672/v';
    const text = scrub(`connect to ${url} failed; password s3cr@t and s3cr%40t`, url);
    expect(text).not.toContain('s3cr');
    expect(text).toContain('amqp://xcron:***@h:5672/v');
  });
});
