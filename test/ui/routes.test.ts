/**
 * The dashboard's server side through app.request (real app, real SQLite, manual clock): the page
 * and assets, their headers, 404/405 under /ui, and the next-fire-times calculation.
 */
import { Script } from 'node:vm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CLIENT_JS } from '../../src/ui/client.js';
import { T0, TEST_VERSION, createTestApi, send, type TestApi } from '../helpers/app.js';

let api: TestApi;
beforeEach(async () => {
  api = await createTestApi({ limits: { defaultTimezone: 'Asia/Shanghai' } });
});
afterEach(async () => {
  await api.close();
});

interface Fires {
  times: number[];
  timezone: string;
}

async function fires(query: string): Promise<Fires> {
  const r = await send<Fires>(api.app, `/ui/api/next-fires?${query}`);
  expect(r.status, r.text).toBe(200);
  expect(r.body.code, r.text).toBe(0);
  return r.body.data;
}

describe('dashboard routes', () => {
  it('serves the page with its assets, a strict CSP and no token needed', async () => {
    const res = await api.app.request('/ui');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await res.text();
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toMatch(/<script src="\/ui\/app\.js\?v=[0-9a-f]{8}"/);
    expect(html).toMatch(/<link rel="stylesheet" href="\/ui\/app\.css\?v=[0-9a-f]{8}"/);
    expect(html).toContain('data-default-tz="Asia/Shanghai"');
    expect(html).toContain(`data-version="${TEST_VERSION}"`);
    expect(html).not.toMatch(/<script>|<script(?![^>]*src=)[^>]*>/); // no inline script

    expect((await api.app.request('/ui/')).status).toBe(200);
    const css = await api.app.request('/ui/app.css');
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
  });

  it('serves a script that parses, with an ETag that answers 304', async () => {
    const res = await api.app.request('/ui/app.js');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const body = await res.text();
    expect(body).toBe(CLIENT_JS);
    expect(() => new Script(body, { filename: 'app.js' })).not.toThrow();
    expect(body).not.toContain('innerHTML');
    const etag = res.headers.get('etag');
    expect(etag).toMatch(/^"[0-9a-f]{16}"$/);
    const again = await api.app.request('/ui/app.js', { headers: { 'if-none-match': etag! } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
  });

  it('answers other methods with 405 and unknown paths with 404, in the envelope', async () => {
    const post = await send(api.app, '/ui', { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(post.body.code).toBe(1013);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const del = await send(api.app, '/ui/app.js', { method: 'DELETE' });
    expect(del.status).toBe(405);
    const missing = await send(api.app, '/ui/nope');
    expect(missing.status).toBe(404);
    expect(missing.body.code).toBe(1012);
    // The API's own routing is untouched.
    expect((await send(api.app, '/uix')).status).toBe(404);
    expect((await send(api.app, '/xcron/queryTask', { method: 'POST', body: '{}' })).status).toBe(405);
  });

  it('lists next fire times: from now, from a known fire, in the timezone, within the window', async () => {
    // T0 = 2030-01-01T00:00:30Z.
    expect((await fires('type=1&format=*/15+*+*+*+*+*&timezone=UTC&count=3')).times).toEqual([T0 + 15_000, T0 + 30_000, T0 + 45_000]);
    // From an existing task's next fire: the list starts with it; @every keeps that lattice.
    expect((await fires(`type=1&format=%40every+10s&from=${T0 + 5000}&count=3`)).times).toEqual([T0 + 5000, T0 + 15_000, T0 + 25_000]);
    // The server's default timezone applies when none is given (midnight in Shanghai is 16:00 UTC).
    const daily = await fires('type=1&format=0+0+*+*+*&count=2');
    expect(daily.timezone).toBe('Asia/Shanghai');
    expect(daily.times).toEqual([Date.UTC(2030, 0, 1, 16), Date.UTC(2030, 0, 2, 16)]);
    // The window's end cuts the list short; its start moves the first fire.
    expect((await fires(`type=1&format=*/15+*+*+*+*+*&timezone=UTC&end=${T0 + 31_000}`)).times).toEqual([T0 + 15_000, T0 + 30_000]);
    expect((await fires(`type=1&format=0+*+*+*+*&timezone=UTC&count=1&start=${Date.UTC(2030, 0, 2)}`)).times).toEqual([Date.UTC(2030, 0, 2)]);
    // One-shot: its one time (seconds or milliseconds).
    expect((await fires('type=2&format=1893456000')).times).toEqual([1_893_456_000_000]);
  });

  it('explains a bad schedule the way createTask does', async () => {
    const cases: [string, number][] = [
      ['type=1&format=not+a+cron', 1005],
      ['type=1&format=*+*+*+*+*&timezone=Mars/Base', 1006],
      ['type=2&format=12345', 1001],
      ['type=3&format=*+*+*+*+*', 1020],
      ['type=1', 1000],
      ['type=1&format=*+*+*+*+*&count=0', 1009],
      ['type=1&format=*+*+*+*+*&count=21', 1009],
      ['type=1&format=*+*+*+*+*&from=yesterday', 1009],
    ];
    for (const [q, code] of cases) {
      const r = await send(api.app, `/ui/api/next-fires?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body.code, `${q}: ${r.text}`).toBe(code);
      expect(r.body.message.length, q).toBeGreaterThan(10);
    }
  });
});
