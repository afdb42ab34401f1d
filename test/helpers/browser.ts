/**
 * Headless Chromium (Debian's `chromium`) for the dashboard tests, driven by playwright-core: a
 * fresh profile per context at a desktop (1440x900) or phone (390x844, touch, mobile viewport)
 * size, page errors collected, and the checks every page gets: axe-core with no serious or critical
 * violation, no sideways scrolling, a screenshot under test-results/ui/.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { REPO_ROOT, tempDir } from './server.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
export const SHOTS = join(REPO_ROOT, 'test-results', 'ui');

export interface Size {
  name: 'desktop' | 'phone';
  width: number;
  height: number;
}

export const DESKTOP: Size = { name: 'desktop', width: 1440, height: 900 };
export const PHONE: Size = { name: 'phone', width: 390, height: 844 };

export interface Tab {
  ctx: BrowserContext;
  page: Page;
  /** Uncaught errors in the page, and console errors (a CSP refusal shows there). */
  errors: string[];
  /** Responses of 400 and above the page received (deliberate refusals among them). */
  failed: string[];
}

export function requireChromium(): void {
  // No silent skip: the dashboard tests need the browser (.ci/run installs it).
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: install Debian's package (apt-get install -y chromium) or set CHROMIUM_PATH`);
  mkdirSync(SHOTS, { recursive: true });
}

/** A fresh browser with one page of `size`, in the time zone `timezoneId` (default UTC). */
export async function openTab(size: Size, timezoneId = 'UTC'): Promise<Tab> {
  const phone = size.name === 'phone';
  const ctx = await chromium.launchPersistentContext(tempDir('xcron-chromium-'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: size.width, height: size.height },
    isMobile: phone,
    hasTouch: phone,
    deviceScaleFactor: 1,
    timezoneId,
    timeout: 60_000,
  });
  ctx.setDefaultTimeout(30_000);
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  const errors: string[] = [];
  const failed: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    // Chromium logs every HTTP error response; those are in `failed`, with their URL.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(`console: ${m.text()}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) failed.push(`${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`);
  });
  return { ctx, page, errors, failed };
}

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/**
 * Runs axe-core in the page and returns the serious and critical violations. The dashboard's CSP
 * allows no inline script, so axe is not added as a <script> tag: its source is evaluated through
 * the DevTools protocol (what page.evaluate does), which the page's CSP does not govern.
 */
export async function axeSerious(page: Page): Promise<AxeViolation[]> {
  const loaded = await page.evaluate(`(() => { ${AXE_SOURCE}\n; return typeof axe === 'object' ? axe.version : null; })()`);
  if (typeof loaded !== 'string') throw new Error('axe-core did not load in the page');
  const result = (await page.evaluate(`(async () => {
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ' :: ' + (n.failureSummary || '').slice(0, 300)) }));
  })()`)) as AxeViolation[];
  return result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** How far the page is wider than the window (0: no sideways scrolling). */
export const sidewaysOverflow = (page: Page): Promise<number> => page.evaluate('document.documentElement.scrollWidth - window.innerWidth') as Promise<number>;

export const shot = (page: Page, name: string): Promise<Buffer> => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
