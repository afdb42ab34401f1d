/**
 * docs/configuration-reference.md is generated from the configuration schema and the key
 * descriptions next to it. It must match a fresh rendering, so it cannot go out of date: after a
 * schema change, run `npm run docs:config` and commit the result.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REFERENCE_PATH, envName, renderConfigReference } from '../../scripts/config-reference.js';
import { parse as parseToml } from 'smol-toml';
import { applyEnv, configSchema, validateConfig } from '../../src/config/index.js';
import { REPO_ROOT } from '../helpers/server.js';

describe('the configuration reference', () => {
  it('the committed file equals the rendering of the current schema (run npm run docs:config)', () => {
    const committed = readFileSync(join(REPO_ROOT, REFERENCE_PATH), 'utf8');
    expect(committed).toBe(renderConfigReference());
  });

  it('documents every key of the schema with its environment variable, and that variable is accepted', () => {
    const text = renderConfigReference();
    const defaults = configSchema.parse({}) as unknown as Record<string, unknown>;
    let keys = 0;
    for (const [key, value] of Object.entries(defaults)) {
      const sub = typeof value === 'object' && value !== null && !Array.isArray(value) ? Object.keys(value) : null;
      for (const [section, k] of sub === null ? [[null, key] as const] : sub.map((s) => [key, s] as const)) {
        const name = envName(section, k);
        expect(text).toContain(`| \`${k}\` |`);
        expect(text).toContain(`\`${name}\``);
        // An unknown XCRON_* name stops the start; a documented one must not.
        expect(() => applyEnv({}, { [name]: '' })).not.toThrow(/unknown setting/);
        keys++;
      }
    }
    expect(keys).toBeGreaterThan(50);
    expect(() => applyEnv({}, { XCRON_SCHEDULER_NO_SUCH_KEY: '1' })).toThrow(/unknown setting/);
  });

  it('config/xcron.example.toml is valid and sets every key of the schema', () => {
    const example = parseToml(readFileSync(join(REPO_ROOT, 'config', 'xcron.example.toml'), 'utf8')) as Record<string, unknown>;
    expect(() => validateConfig(example)).not.toThrow();
    const defaults = configSchema.parse({}) as unknown as Record<string, unknown>;
    const missing: string[] = [];
    for (const [key, value] of Object.entries(defaults)) {
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
        const sec = example[key] as Record<string, unknown> | undefined;
        for (const sub of Object.keys(value)) if (!sec || !(sub in sec)) missing.push(`${key}.${sub}`);
      } else if (!(key in example)) {
        missing.push(key);
      }
    }
    expect(missing).toEqual([]);
  });
});
