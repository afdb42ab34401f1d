/**
 * The API reference page (/docs) and the contract against the real built server: headless
 * Chromium (Debian's `chromium`, driven by playwright-core) renders every operation of
 * /openapi.json under the dashboard's content security policy, with no violation and no request
 * to another origin; and a real callback carries exactly the X-Xcron-* headers the document's
 * webhook declares.
 */
import { existsSync } from 'node:fs';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { UI_CSP } from '../../src/ui/index.js';
import { call } from '../helpers/http.js';
import { Receiver, header } from '../helpers/receiver.js';
import { XcronServer, cleanupTempDirs, ensureBuilt, stopAllServers, takeStarted, tempDir } from '../helpers/server.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const WAIT = 60_000;

type Json = Record<string, unknown>;

let receiver: Receiver;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: install Debian's package (apt-get install -y chromium) or set CHROMIUM_PATH`);
  ensureBuilt();
  receiver = await Receiver.start();
}, 600_000);

afterEach(async (ctx) => {
  const servers = takeStarted();
  if (ctx.task.result?.state === 'fail') for (const s of servers) console.log(s.tail());
  await Promise.all(contexts.splice(0).map((c) => c.close()));
  await stopAllServers();
});

afterAll(async () => {
  await receiver?.close();
  cleanupTempDirs();
});

describe('API reference page', () => {
  it('renders every operation of /openapi.json in Chromium under the dashboard CSP, with no violation and nothing from elsewhere', async () => {
    const srv = await XcronServer.start();
    const spec = await call(srv.baseUrl, 'GET', '/openapi.json');
    const ops = Object.values((JSON.parse(spec.text) as { paths: Record<string, Json> }).paths).flatMap((item) => Object.values(item) as Json[]);
    expect(ops.length).toBeGreaterThanOrEqual(20);

    const page0 = await call(srv.baseUrl, 'GET', '/docs');
    expect(page0.status).toBe(200);
    expect(page0.headers['content-security-policy']).toBe(UI_CSP);
    expect(page0.text).not.toMatch(/<script>|<style|style=/); // nothing inline

    const ctx = await chromium.launchPersistentContext(tempDir('xcron-chromium-'), { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1280, height: 800 }, timeout: WAIT });
    contexts.push(ctx);
    ctx.setDefaultTimeout(WAIT);
    await ctx.addInitScript({
      content: "window.__csp = []; document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));",
    });
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    const errors: string[] = [];
    const consoleCsp: string[] = [];
    const foreign: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (/content security policy/i.test(m.text())) consoleCsp.push(m.text());
    });
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (u.protocol !== 'data:' && u.origin !== new URL(srv.baseUrl).origin) foreign.push(r.url());
    });

    await page.goto(`${srv.baseUrl}/docs`);
    await page.waitForSelector('.opblock');
    // Swagger UI renders one block per operation (tags expanded by default).
    await page.waitForFunction(`document.querySelectorAll('.opblock').length >= ${ops.length}`);
    const ids = await page.$$eval('.opblock', (els) => els.map((e) => e.id));
    for (const op of ops) expect(ids.some((id) => id.endsWith(`-${op.operationId as string}`)), `operation ${op.operationId as string} on the page`).toBe(true);
    expect(await page.textContent('.info .title')).toContain('xcron');
    // Open one operation: its parameters and responses render too.
    await page.click('#operations-tasks-queryTask .opblock-summary');
    await page.waitForSelector('#operations-tasks-queryTask .responses-table');
    // The webhooks section is shown.
    expect(await page.textContent('body')).toContain('taskCallback');

    const violations = await page.evaluate('window.__csp');
    expect(violations).toEqual([]);
    expect(consoleCsp).toEqual([]);
    expect(errors).toEqual([]);
    expect(foreign).toEqual([]);
  }, 300_000); // a browser start and a 1.8 MB script on a busy 2-core machine

  it('a real callback carries the X-Xcron-* headers the document declares for the webhook, and the required ones', async () => {
    const srv = await XcronServer.start({ env: { XCRON_CALLBACK_SIGNING_SECRETS: JSON.stringify(['openapi-test-secret-0123456789']) } });
    const doc = JSON.parse((await call(srv.baseUrl, 'GET', '/openapi.json')).text) as { webhooks: Record<string, { post: { parameters: Json[] } }> };
    const params = doc.webhooks.taskCallback!.post.parameters.filter((p) => p.in === 'header');
    const declared = new Set(params.map((p) => (p.name as string).toLowerCase()));
    const required = params.filter((p) => p.required === true).map((p) => (p.name as string).toLowerCase());

    const created = await srv.client.mustCreate({ type: 1, format: '*/1 * * * * *', callback: { url: receiver.url('/openapi-hook'), body: { n: 1 } } });
    const got = await receiver.waitForRequest((r) => header(r, 'x-xcron-task-id') === created.task_id, WAIT, 'the callback');
    const sent = Object.keys(got.headers).filter((h) => h.startsWith('x-xcron-'));
    for (const h of sent) expect(declared.has(h), `header ${h} is declared`).toBe(true);
    for (const h of required) expect(header(got, h), `required header ${h}`).toBeDefined();
    expect(header(got, 'x-xcron-signature')).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    await srv.client.deleteTask(created.task_id);
  }, 120_000);
});
