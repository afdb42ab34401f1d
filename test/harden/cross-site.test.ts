/**
 * A web page of another site cannot create tasks on a server it can reach (here one on 127.0.0.1
 * without tokens, the default setup): real headless Chromium loads a page from http://localhost:<p>
 * that POSTs a createTask body to http://127.0.0.1:<server> as a CORS "simple request" (no preflight:
 * a body without Content-Type, and a text/plain one). The same request from a page of the server's
 * own origin goes through, so the test sees a refusal only where the browser says "cross-site".
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../helpers/http.js';
import { XcronServer, cleanupTempDirs, ensureBuilt, stopAllServers, takeStarted, tempDir } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const WAIT = 30_000;

let browser: BrowserContext | null = null;
let page: Server | null = null;

beforeAll(() => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: install Debian's package (apt-get install -y chromium) or set CHROMIUM_PATH`);
  ensureBuilt();
}, 600_000);

afterEach(async (ctx) => {
  const servers = takeStarted();
  if (ctx.task.result?.state === 'fail') for (const s of servers) console.log(s.tail());
  await browser?.close();
  browser = null;
  if (page) await new Promise((done) => page!.close(done));
  page = null;
  await stopAllServers();
});

afterAll(() => {
  cleanupTempDirs();
});

/** A blank page of another site: served from http://localhost:<port> (the server is on 127.0.0.1). */
async function otherSite(): Promise<string> {
  const srv = createServer((_, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>another site</title>'));
  page = srv;
  const port = await new Promise<number>((res) => srv.listen(0, '127.0.0.1', () => res((srv.address() as { port: number }).port)));
  return `http://localhost:${port}/`;
}

/** In the page: POSTs a createTask body as a simple request; resolves when the request has completed. */
const SEND = async ([url, body, asText]: [string, string, boolean]): Promise<string> => {
  const r = await fetch(url, { method: 'POST', mode: 'no-cors', body: asText ? body : new Blob([body]) });
  return r.type;
};

async function tasksOn(srv: XcronServer): Promise<string[]> {
  const r = await call<{ tasks: { name: string }[] }>(srv.baseUrl, 'GET', '/xcron/listTasks');
  return r.body.data.tasks.map((t) => t.name);
}

describe('a page of another site', () => {
  it('cannot create a task with a simple request; a page of the server itself can', async () => {
    const srv = await XcronServer.start();
    browser = await chromium.launchPersistentContext(tempDir('xcron-chromium-'), { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
    browser.setDefaultTimeout(WAIT);
    const tab = browser.pages()[0] ?? (await browser.newPage());
    const body = (name: string): string => JSON.stringify({ type: 2, format: String(Math.floor(Date.now() / 1000) + 3600), name, callback: { url: 'https://receiver.example/x', body: {} } });
    const target = `${srv.baseUrl}/xcron/createTask`;

    await tab.goto(await otherSite());
    expect(await tab.evaluate(SEND, [target, body('from-other-site-blob'), false] as [string, string, boolean])).toBe('opaque');
    expect(await tab.evaluate(SEND, [target, body('from-other-site-text'), true] as [string, string, boolean])).toBe('opaque');

    // The control: the same request from a page of the server's own origin.
    await tab.goto(`${srv.baseUrl}/ui`);
    await tab.evaluate(SEND, [target, body('from-same-origin'), false] as [string, string, boolean]);
    const names = await waitUntil(() => tasksOn(srv), (n) => n.includes('from-same-origin'), WAIT, 'the same-origin task');
    expect(names).toEqual(['from-same-origin']);
    // The two requests of the other site reached the server and were refused there.
    const creates = srv.logs().filter((l) => l.msg === 'request' && l.path === '/xcron/createTask' && l.method === 'POST');
    expect(creates.map((l) => l.status)).toEqual([403, 403, 200]);

    // What the refused request got (as the browser sent it: no Content-Type, Sec-Fetch-Site: cross-site).
    const refused = await call(srv.baseUrl, 'POST', '/xcron/createTask', { body: body('direct'), headers: { 'sec-fetch-site': 'cross-site', origin: 'http://localhost:1' } });
    expect(refused.status).toBe(403);
    expect(refused.body.code).toBe(1010);
    expect(refused.body.message).toContain('a browser request from another site may not call POST /xcron/createTask (Sec-Fetch-Site: cross-site)');
    const sameSite = await call(srv.baseUrl, 'POST', '/xcron/deleteTask', { json: { task_id: 'x' }, headers: { 'sec-fetch-site': 'same-site' } });
    expect(sameSite.status).toBe(403);
    // Clients that are not browsers send no Sec-Fetch-Site and are not affected.
    expect((await call(srv.baseUrl, 'POST', '/xcron/createTask', { json: JSON.parse(body('server-side')) })).body.code).toBe(0);
    expect((await tasksOn(srv)).sort()).toEqual(['from-same-origin', 'server-side']);
  });
});
