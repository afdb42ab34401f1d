/**
 * Header and URL grammar fuzzer (issue 23, items 5 and 12). Property-based (fast-check): any
 * callback header name or value, any callback URL, is either refused at create time with the
 * envelope's specific code and a message naming the field, or accepted and then sendable as given.
 * A value refused here is one no HTTP client could send as given; a value accepted here reaches a
 * real receiver byte for byte. Trailing-dot spellings get the same destination verdict.
 */
import { validateHeaderName, validateHeaderValue } from 'node:http';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SystemClock } from '../../src/clock/index.js';
import { Delivery, type DeliveryJob } from '../../src/delivery/index.js';
import { DestinationPolicy } from '../../src/delivery/ssrf.js';
import { Codes, XcronError } from '../../src/errors.js';
import { validateCreate, validateUpdate, type ValidationLimits } from '../../src/task/index.js';
import { checkUrl } from '../../src/task/validate.js';
import { Receiver } from '../helpers/receiver.js';

const NOW = Date.parse('2026-01-01T00:00:00Z');
const LIMITS: ValidationLimits = { defaultTimezone: 'UTC', callbackBodyLimit: 4096, pastGraceMs: 1000 };
const RUNS = Number(process.env.XCRON_FUZZ_RUNS ?? 2000);

const create = (headers: Record<string, unknown>, url = 'https://example.com/hook'): unknown => ({ type: 1, format: '*/5 * * * *', callback: { url, headers } });
function outcome(f: () => unknown): { ok: true } | { ok: false; err: XcronError } {
  try {
    f();
    return { ok: true };
  } catch (e) {
    if (!(e instanceof XcronError)) throw e; // anything else is a bug the property reports
    return { ok: false, err: e };
  }
}

/** The oracle: RFC 9110 field-value, ASCII only (no obs-text), no leading/trailing whitespace. */
const valueOk = (v: string): boolean => v.length <= 8192 && /^[\t\x20-\x7e]*$/.test(v) && !/^[ \t]|[ \t]$/.test(v);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/;
const RESERVED = ['host', 'content-length', 'content-type', 'transfer-encoding', 'connection', 'user-agent', 'keep-alive', 'upgrade', 'te', 'trailer', 'expect'];
const nameOk = (n: string): boolean => TOKEN.test(n) && !RESERVED.includes(n.toLowerCase()) && !n.toLowerCase().startsWith('x-xcron-');

/** Strings concentrated on the interesting edges: controls, DEL, latin-1, line separators, CJK, astral, spaces at the ends. */
const edgeChar = fc.constantFrom('\t', ' ', '\v', '\f', '\r', '\n', '\0', '\x1b', '\x7f', '\x80', '\x85', '\xa0', 'é', 'ÿ', '\u2028', '\u2029', '\ufeff', '日', '本', '😀', '\ud800');
const headerText = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
  { weight: 3, arbitrary: fc.array(fc.oneof({ weight: 4, arbitrary: fc.string({ minLength: 1, maxLength: 4 }) }, { weight: 1, arbitrary: edgeChar }), { maxLength: 12 }).map((a) => a.join('')) },
  { weight: 2, arbitrary: fc.string({ maxLength: 40 }) },
);

describe('callback header values', () => {
  it('are accepted exactly when they are sendable field-values, else refused with 1009 naming the header', () => {
    fc.assert(
      fc.property(headerText, (value) => {
        const r = outcome(() => validateCreate(create({ 'X-V': value }), NOW, LIMITS));
        if (valueOk(value)) {
          expect(r.ok).toBe(true);
          expect(() => validateHeaderValue('x-v', value)).not.toThrow();
        } else {
          expect(r.ok).toBe(false);
          if (!r.ok) {
            expect(r.err.code).toBe(Codes.INVALID_OPTION);
            expect(r.err.status).toBe(400);
            expect(r.err.message).toContain("'callback.headers.X-V'");
          }
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('updateTask applies the same check', () => {
    const current = validateCreate(create({}), NOW, LIMITS).spec;
    fc.assert(
      fc.property(headerText, (value) => {
        const r = outcome(() => validateUpdate({ task_id: 't', callback: { url: 'https://example.com/x', headers: { 'X-V': value } } }, current, LIMITS));
        expect(r.ok).toBe(valueOk(value));
        if (!r.ok) expect(r.err.message).toContain("'callback.headers.X-V'");
      }),
      { numRuns: RUNS },
    );
  });

  it('the values the issue found (日本, vertical tab, DEL, U+2028) are refused with the character and its position named', () => {
    for (const [v, shown] of [['日本', 'U+65E5'], ['a\vb', 'U+000B (vertical tab)'], ['x\x7f', 'U+007F (DEL)'], ['\u2028', 'U+2028 (line separator)'], ['caf\u00e9', 'U+00E9'], ['a\r\nX-B: 1', 'U+000D (CR)']] as const) {
      const r = outcome(() => validateCreate(create({ 'X-Tenant': v }), NOW, LIMITS));
      expect(r.ok, JSON.stringify(v)).toBe(false);
      if (!r.ok) expect(r.err.message).toMatch(new RegExp(`^invalid 'callback\\.headers\\.X-Tenant': .*found ${shown.replace(/[()+]/g, '\\$&')}`));
    }
    const ws = outcome(() => validateCreate(create({ 'X-Tenant': ' padded' }), NOW, LIMITS));
    expect(!ws.ok && ws.err.message).toMatch(/must not start or end with a space or tab/);
  });
});

describe('callback header names', () => {
  it('are accepted exactly when they are HTTP tokens xcron does not set itself', () => {
    const name = fc.oneof(fc.string({ unit: 'binary', maxLength: 12 }), fc.string({ minLength: 1, maxLength: 12 }), fc.constantFrom(...RESERVED, 'X-Xcron-Attempt', 'Content-Type', 'Authorization', 'a'.repeat(101)));
    fc.assert(
      fc.property(name, (n) => {
        const r = outcome(() => validateCreate(create({ [n]: 'v' }), NOW, LIMITS));
        expect(r.ok, JSON.stringify(n)).toBe(nameOk(n));
        if (r.ok) expect(() => validateHeaderName(n)).not.toThrow();
        else {
          expect(r.err.code).toBe(Codes.INVALID_OPTION);
          expect(r.err.message).toMatch(/^invalid 'callback\.headers'/);
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe('accepted header values arrive at a real receiver exactly as given', () => {
  let receiver: Receiver;
  let delivery: Delivery;
  beforeAll(async () => {
    receiver = await Receiver.start();
    delivery = new Delivery({ clock: new SystemClock(), log: pino({ level: 'silent' }), userAgent: 'xcron/test', globalConcurrency: 8, perOriginConcurrency: 8, maxResponseBytes: 65_536, signingSecrets: [] });
  });
  afterAll(async () => {
    await delivery.close();
    await receiver.close();
  });

  it('every accepted value (printable ASCII with inner spaces and tabs) is sent byte for byte', async () => {
    let n = 0;
    const printable = fc.string({ unit: fc.constantFrom(...Array.from({ length: 95 }, (_, i) => String.fromCharCode(0x20 + i)), '\t'), maxLength: 60 });
    await fc.assert(
      fc.asyncProperty(printable, async (value) => {
        const r = outcome(() => validateCreate(create({ 'X-V': value }), NOW, LIMITS));
        fc.pre(r.ok);
        const spec = validateCreate(create({ 'X-V': value }), NOW, LIMITS).spec;
        const path = `/h${n++}`;
        const job: DeliveryJob = {
          run_id: `t:${n}`, task_id: 't', scheduled_time: NOW, url: receiver.url(path), method: 'POST', headers: spec.callback.headers, body: '{}', timeout_ms: 5000,
          retry: { max_attempts: 1, backoff_ms: 0, max_backoff_ms: 0 }, first_attempt: 1,
        };
        const res = await delivery.deliver(job);
        expect(res.error).toBeNull();
        const got = receiver.to(path)[0]!;
        expect(got.headers['x-v']).toBe(value);
      }),
      { numRuns: 150 },
    );
  });
});

// ------------------------------------------------------------------------------------------ URLs

const label = fc.oneof(
  { weight: 6, arbitrary: fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/) },
  { weight: 1, arbitrary: fc.constantFrom('', 'LOCALHOST', 'localhost', 'xn--nxasmq6b', 'bücher', '日本', '_srv', '-a', 'a_b', '%41', '127', '0x7f', '017700000001') },
);
const hostname = fc.oneof(
  { weight: 5, arbitrary: fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join('.')) },
  { weight: 2, arbitrary: fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.')) },
  { weight: 1, arbitrary: fc.constantFrom('127.1', '0x7f.0.0.1', '0177.0.0.1', '2130706433', '[::1]', '[::ffff:127.0.0.1]', '[fe80::1%25eth0]', '[64:ff9b::a9fe:a9fe]', '169.254.169.254', '[::]', '0', '0.0.0.0', '[', ']') },
);
const urlText = fc
  .tuple(
    fc.constantFrom('http://', 'https://', 'HTTP://', 'hTTps://', 'ftp://', 'javascript:', 'http:/', 'http:', '//', '', 'http:\\\\', 'file://'),
    fc.constantFrom('', '', '', 'u:p@', 'u@', '@', ':@'),
    hostname,
    fc.constantFrom('', '', '.', '..'),
    fc.constantFrom('', '', ':80', ':0', ':65535', ':65536', ':abc', ':'),
    fc.oneof(fc.constant('/'), fc.string({ unit: 'binary', maxLength: 20 }).map((s) => `/${s}`), fc.constant('')),
  )
  .map((p) => p.join(''));

describe('callback URLs', () => {
  it('are accepted as given or refused with 1003 naming the field; accepted ones are absolute http(s) URLs with a real host', () => {
    fc.assert(
      fc.property(urlText, (u) => {
        const r = outcome(() => checkUrl(u));
        if (!r.ok) {
          expect(r.err.code, u).toBe(Codes.CALLBACK_URL);
          expect(r.err.message).toContain("'callback.url'");
          return;
        }
        const parsed = new URL(u);
        expect(['http:', 'https:']).toContain(parsed.protocol);
        expect(parsed.hostname).not.toBe('');
        expect(parsed.hostname.startsWith('.') || parsed.hostname.includes('..'), u).toBe(false);
        expect(parsed.username + parsed.password).toBe('');
      }),
      { numRuns: RUNS },
    );
  });

  it('the destination verdict of a host does not depend on a trailing dot, nor on the spelling of an IP literal', async () => {
    const pool = ['127.0.0.1', '10.0.0.7', '169.254.169.254', '93.184.216.34', '::1', 'fd00::1', '2606:4700::1111'];
    await fc.assert(
      fc.asyncProperty(urlText, fc.boolean(), fc.boolean(), fc.subarray(pool, { minLength: 1 }), async (u, allowLoopback, allowPrivate, addrs) => {
        if (!outcome(() => checkUrl(u)).ok) return;
        const host = new URL(u).hostname;
        const policy = new DestinationPolicy({ allowLoopback, allowPrivate, resolve: () => Promise.resolve(addrs.map((a) => ({ address: a, family: a.includes(':') ? 6 : 4 }))) });
        const verdict = (r: string | null): boolean => r === null;
        const a = await policy.urlRefusal(u);
        if (host.startsWith('[') || /^[\d.]+$/.test(host)) {
          // an IP literal (the URL parser canonicalises 0x7f.1, 2130706433, 127.0.0.1. ...): judged as that address
          expect(verdict(a), u).toBe(verdict(policy.refusal(host.replace(/^\[|\]$/g, ''))));
          return;
        }
        const dotted = u.replace(host, host.endsWith('.') ? host.slice(0, -1) : `${host}.`);
        if (outcome(() => checkUrl(dotted)).ok) expect(verdict(await policy.urlRefusal(dotted)), `${u} vs ${dotted}`).toBe(verdict(a));
      }),
      { numRuns: Math.min(RUNS, 1000) },
    );
  });
});
