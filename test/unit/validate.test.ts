/** validateCreate (src/task/validate.ts), field by field. */
import { describe, expect, it } from 'vitest';
import { Codes, XcronError } from '../../src/errors.js';
import { validateCreate, type ValidationLimits } from '../../src/task/index.js';

const NOW = Date.parse('2026-01-01T00:00:00Z');
const LIMITS: ValidationLimits = { defaultTimezone: 'UTC', callbackBodyLimit: 1024, pastGraceMs: 1000 };

const base = (): Record<string, unknown> => ({ type: 1, format: '*/5 * * * *', callback: { url: 'https://example.com/hook' } });
const withField = (k: string, v: unknown): Record<string, unknown> => ({ ...base(), [k]: v });
const withCallback = (cb: Record<string, unknown>): Record<string, unknown> => ({ ...base(), callback: { url: 'https://example.com/hook', ...cb } });

function xerr(body: unknown, limits: ValidationLimits = LIMITS): XcronError {
  try {
    validateCreate(body, NOW, limits);
  } catch (e) {
    expect(e).toBeInstanceOf(XcronError);
    return e as XcronError;
  }
  throw new Error(`expected validateCreate to throw for ${JSON.stringify(body)}`);
}

describe('validateCreate: defaults', () => {
  it('fills in every default for a minimal periodic task', () => {
    const r = validateCreate(base(), NOW, LIMITS);
    expect(r.paused).toBe(false);
    expect(r.next_fire_time).toBe(Date.parse('2026-01-01T00:05:00Z'));
    // toMatchObject: extension fields added later may carry their own defaults
    expect(r.spec).toMatchObject({
      type: 1,
      format: '*/5 * * * *',
      name: null,
      timezone: 'UTC',
      callback: { url: 'https://example.com/hook', body: {}, method: 'POST', headers: null },
      timeout_ms: null,
      retry: null,
      misfire: 'fire_once',
      overlap: 'allow',
      idempotency_key: null,
    });
  });

  it('uses the configured default timezone when none is given', () => {
    const r = validateCreate({ ...base(), format: '0 0 * * *' }, NOW, { ...LIMITS, defaultTimezone: 'Asia/Shanghai' });
    expect(r.spec.timezone).toBe('Asia/Shanghai');
    expect(r.next_fire_time).toBe(Date.parse('2026-01-01T16:00:00Z'));
  });

  it('null means "not given" for optional fields', () => {
    const r = validateCreate(
      { ...base(), name: null, timezone: null, timeout_ms: null, retry: null, misfire: null, overlap: null, paused: null, idempotency_key: null },
      NOW,
      LIMITS,
    );
    expect(r.spec.timezone).toBe('UTC');
    expect(r.spec.misfire).toBe('fire_once');
    expect(r.spec.overlap).toBe('allow');
    expect(r.paused).toBe(false);
  });

  it('retry {} gets default attempts and backoff', () => {
    expect(validateCreate(withField('retry', {}), NOW, LIMITS).spec.retry).toEqual({ max_attempts: 3, backoff_ms: 1000, max_backoff_ms: 60_000 });
    expect(validateCreate(withField('retry', { backoff_ms: 120_000 }), NOW, LIMITS).spec.retry).toEqual({
      max_attempts: 3,
      backoff_ms: 120_000,
      max_backoff_ms: 120_000,
    });
  });

  it('keeps every accepted extension field', () => {
    const r = validateCreate(
      {
        type: 2,
        format: '1767225660',
        name: 'report',
        timezone: 'Europe/Berlin',
        callback: { url: 'http://10.0.0.1:8080/x?y=1', body: { a: [1, 2], b: 'c' }, method: 'PUT', headers: { Authorization: 'Bearer t', 'X-Trace': '1' } },
        timeout_ms: 5000,
        retry: { max_attempts: 5, backoff_ms: 10, max_backoff_ms: 100 },
        misfire: 'skip',
        overlap: 'queue',
        paused: true,
        idempotency_key: 'k-1',
      },
      NOW,
      LIMITS,
    );
    expect(r.paused).toBe(true);
    expect(r.next_fire_time).toBe(Date.parse('2026-01-01T00:01:00Z'));
    expect(r.spec).toMatchObject({
      type: 2,
      format: '1767225660',
      name: 'report',
      timezone: 'Europe/Berlin',
      callback: { url: 'http://10.0.0.1:8080/x?y=1', body: { a: [1, 2], b: 'c' }, method: 'PUT', headers: { Authorization: 'Bearer t', 'X-Trace': '1' } },
      timeout_ms: 5000,
      retry: { max_attempts: 5, backoff_ms: 10, max_backoff_ms: 100 },
      misfire: 'skip',
      overlap: 'queue',
      idempotency_key: 'k-1',
    });
  });
});

describe('validateCreate: request shape', () => {
  it.each([[null], [[]], ['x'], [42], [true], [undefined]])('a non-object body (%j) -> 1000', (body) => {
    const e = xerr(body);
    expect(e.code).toBe(Codes.BAD_JSON);
    expect(e.status).toBe(400);
    expect(e.message).toMatch(/request body must be a JSON object/);
  });

  it('an unknown top-level field -> 1000 naming it', () => {
    const e = xerr(withField('cron', '* * * * *'));
    expect(e.code).toBe(1000);
    expect(e.message).toContain("'cron'");
  });

  it('an unknown callback field -> 1000 naming it', () => {
    const e = xerr(withCallback({ uri: 'x' }));
    expect(e.code).toBe(1000);
    expect(e.message).toContain("'callback.uri'");
  });

  it('an unknown retry field -> 1000 naming it', () => {
    const e = xerr(withField('retry', { attempts: 3 }));
    expect(e.code).toBe(1000);
    expect(e.message).toContain("'retry.attempts'");
  });
});

describe('validateCreate: wrong JSON types -> 1000 naming the field', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['type as a string', withField('type', '1'), 'type'],
    ['type as a fraction', withField('type', 1.5), 'type'],
    ['format as a number', withField('format', 5), 'format'],
    ['format as a number (one-shot)', { ...base(), type: 2, format: 1767225660 }, 'format'],
    ['name as a number', withField('name', 7), 'name'],
    ['timezone as a number', withField('timezone', 8), 'timezone'],
    ['callback as a string', withField('callback', 'https://example.com'), 'callback'],
    ['callback.body as an array', withCallback({ body: [1] }), 'callback.body'],
    ['callback.body as a string', withCallback({ body: 'x' }), 'callback.body'],
    ['callback.method as a number', withCallback({ method: 1 }), 'callback.method'],
    ['callback.headers as an array', withCallback({ headers: ['a'] }), 'callback.headers'],
    ['a header value as a number', withCallback({ headers: { 'X-N': 1 } }), 'callback.headers.X-N'],
    ['timeout_ms as a string', withField('timeout_ms', '1000'), 'timeout_ms'],
    ['retry as a number', withField('retry', 3), 'retry'],
    ['retry.max_attempts as a string', withField('retry', { max_attempts: '3' }), 'retry.max_attempts'],
    ['misfire as a boolean', withField('misfire', true), 'misfire'],
    ['overlap as a number', withField('overlap', 0), 'overlap'],
    ['paused as a string', withField('paused', 'true'), 'paused'],
    ['idempotency_key as a number', withField('idempotency_key', 5), 'idempotency_key'],
  ];
  it.each(cases)('%s', (_name, body, field) => {
    const e = xerr(body);
    expect(e.code).toBe(Codes.BAD_JSON);
    expect(e.status).toBe(400);
    expect(e.message).toContain(`'${field}'`);
  });

  it('the message says what was received', () => {
    expect(xerr(withField('timeout_ms', '1000')).message).toMatch(/must be an integer, got the string "1000"/);
  });

  it('missing type / format -> 1000', () => {
    const { type: _t, ...noType } = base();
    expect(xerr(noType).code).toBe(1000);
    expect(xerr(noType).message).toMatch(/'type' is required/);
    const { format: _f, ...noFormat } = base();
    expect(xerr(noFormat).code).toBe(1000);
    expect(xerr(noFormat).message).toMatch(/'format' is required/);
  });
});

describe('validateCreate: type', () => {
  it.each([0, 3, -1, 99])('type %i -> 1020', (type) => {
    const e = xerr(withField('type', type));
    expect(e.code).toBe(Codes.UNSUPPORTED_TYPE);
    expect(e.code).toBe(1020);
    expect(e.status).toBe(400);
    expect(e.message).toContain(String(type));
  });
});

describe('validateCreate: format', () => {
  it('an invalid cron -> 1005 with the parser reason', () => {
    const e = xerr(withField('format', '61 * * * *'));
    expect(e.code).toBe(1005);
    expect(e.message).toMatch(/minute/);
  });
  it('an over-long format -> 1005 (periodic) / 1001 (one-shot)', () => {
    expect(xerr(withField('format', `${'1,'.repeat(200)}2 * * * *`)).code).toBe(1005);
    expect(xerr({ ...base(), type: 2, format: '1'.repeat(300) }).code).toBe(1001);
  });
  it('an unknown timezone -> 1006', () => {
    const e = xerr(withField('timezone', 'Atlantis/Capital'));
    expect(e.code).toBe(1006);
    expect(e.message).toContain('Atlantis/Capital');
  });
  it('the timezone is canonicalised', () => {
    expect(validateCreate(withField('timezone', 'europe/berlin'), NOW, LIMITS).spec.timezone).toBe('Europe/Berlin');
  });
});

describe('validateCreate: callback url -> 1003', () => {
  const cases: [string, Record<string, unknown>][] = [
    ['callback missing', (() => { const { callback: _c, ...b } = base(); return b; })()],
    ['callback null', withField('callback', null)],
    ['url missing', withField('callback', { body: {} })],
    ['url empty', withCallback({ url: '' })],
    ['url relative', withCallback({ url: '/hook' })],
    ['url without scheme', withCallback({ url: 'example.com/hook' })],
    ['ftp url', withCallback({ url: 'ftp://example.com/file' })],
    ['file url', withCallback({ url: 'file:///etc/passwd' })],
    ['javascript url', withCallback({ url: 'javascript:alert(1)' })],
    ['url with credentials', withCallback({ url: 'https://user:pw@example.com/' })],
    ['url not a string', withCallback({ url: 42 })],
    ['url too long', withCallback({ url: `https://example.com/${'a'.repeat(2100)}` })],
  ];
  it.each(cases)('%s', (_name, body) => {
    const e = xerr(body);
    expect(e.code).toBe(Codes.CALLBACK_URL);
    expect(e.code).toBe(1003);
    expect(e.status).toBe(400);
    expect(e.message).toMatch(/callback/);
  });
  it('says which scheme was refused', () => {
    expect(xerr(withCallback({ url: 'ftp://example.com/file' })).message).toContain('"ftp"');
  });
  it.each(['http://localhost:8080/x', 'https://example.com', 'http://[::1]:9/x', 'HTTPS://EXAMPLE.COM/A'])('accepts %s', (url) => {
    expect(validateCreate(withCallback({ url }), NOW, LIMITS).spec.callback.url).toBe(url);
  });
});

describe('validateCreate: callback body size', () => {
  it('a body over the limit -> 1008 with status 413', () => {
    const e = xerr(withCallback({ body: { big: 'x'.repeat(2000) } }));
    expect(e.code).toBe(Codes.TOO_LARGE);
    expect(e.code).toBe(1008);
    expect(e.status).toBe(413);
    expect(e.message).toMatch(/callback\.body/);
    expect(e.message).toContain('1024');
  });
  it('a body exactly at the limit is accepted; one byte more is not', () => {
    // {"k":"…"} is 8 bytes of overhead
    const at = { k: 'x'.repeat(1024 - 8) };
    expect(Buffer.byteLength(JSON.stringify(at))).toBe(1024);
    expect(validateCreate(withCallback({ body: at }), NOW, LIMITS).spec.callback.body).toEqual(at);
    expect(xerr(withCallback({ body: { k: 'x'.repeat(1024 - 7) } })).code).toBe(1008);
  });
  it('the size is counted in UTF-8 bytes, not characters', () => {
    const e = xerr(withCallback({ body: { k: '€'.repeat(400) } })); // 1200 bytes, 400 chars
    expect(e.code).toBe(1008);
  });
});

describe('validateCreate: option values -> 1009', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['timeout_ms 0', withField('timeout_ms', 0), 'timeout_ms'],
    ['timeout_ms negative', withField('timeout_ms', -5), 'timeout_ms'],
    ['timeout_ms fraction', withField('timeout_ms', 1.5), 'timeout_ms'],
    ['timeout_ms too large', withField('timeout_ms', 300_001), 'timeout_ms'],
    ['retry.max_attempts 0', withField('retry', { max_attempts: 0 }), 'retry.max_attempts'],
    ['retry.max_attempts 101', withField('retry', { max_attempts: 101 }), 'retry.max_attempts'],
    ['retry.backoff_ms negative', withField('retry', { backoff_ms: -1 }), 'retry.backoff_ms'],
    ['retry.max_backoff_ms < backoff_ms', withField('retry', { backoff_ms: 5000, max_backoff_ms: 1000 }), 'retry.max_backoff_ms'],
    ['misfire unknown', withField('misfire', 'fire_all'), 'misfire'],
    ['overlap unknown', withField('overlap', 'parallel'), 'overlap'],
    ['method unknown', withCallback({ method: 'TRACE' }), 'callback.method'],
    ['method lower case', withCallback({ method: 'post' }), 'callback.method'],
    ['name empty', withField('name', ''), 'name'],
    ['name too long', withField('name', 'n'.repeat(201)), 'name'],
    ['idempotency_key empty', withField('idempotency_key', ''), 'idempotency_key'],
    ['header name with a space', withCallback({ headers: { 'Bad Name': 'x' } }), 'callback.headers'],
    ['header value with CRLF', withCallback({ headers: { 'X-A': 'a\r\nX-Injected: 1' } }), 'callback.headers.X-A'],
    ['too many headers', withCallback({ headers: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`X-H${i}`, 'v'])) }), 'callback.headers'],
  ];
  it.each(cases)('%s', (_name, body, field) => {
    const e = xerr(body);
    expect(e.code).toBe(Codes.INVALID_OPTION);
    expect(e.code).toBe(1009);
    expect(e.status).toBe(400);
    expect(e.message).toContain(`'${field}'`);
  });

  it('boundaries are accepted', () => {
    const r = validateCreate(
      { ...base(), timeout_ms: 300_000, retry: { max_attempts: 100, backoff_ms: 0, max_backoff_ms: 0 } },
      NOW,
      LIMITS,
    );
    expect(r.spec.timeout_ms).toBe(300_000);
    expect(r.spec.retry).toEqual({ max_attempts: 100, backoff_ms: 0, max_backoff_ms: 0 });
    expect(validateCreate(withField('timeout_ms', 1), NOW, LIMITS).spec.timeout_ms).toBe(1);
  });
});

describe('validateCreate: reserved headers are refused', () => {
  it.each(['Host', 'content-type', 'Content-Length', 'User-Agent', 'Transfer-Encoding', 'Connection', 'X-Xcron-Fire-Id', 'x-xcron-signature', 'X-XCRON-Anything'])(
    '%s',
    (name) => {
      const e = xerr(withCallback({ headers: { [name]: 'v' } }));
      expect(e.code).toBe(1009);
      expect(e.message).toContain(name);
      expect(e.message).toMatch(/cannot be overridden/);
    },
  );
  it('ordinary headers are kept as given', () => {
    const r = validateCreate(withCallback({ headers: { Authorization: 'Bearer abc', 'X-Tenant': 't1' } }), NOW, LIMITS);
    expect(r.spec.callback.headers).toEqual({ Authorization: 'Bearer abc', 'X-Tenant': 't1' });
  });
});
