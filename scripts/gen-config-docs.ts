/**
 * Writes docs/configuration-reference.md from the configuration schema.
 *   npm run docs:config             rewrite the file
 *   npm run docs:config -- --check  exit 1 when the committed file is out of date
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REFERENCE_PATH, renderConfigReference } from './config-reference.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const file = join(root, REFERENCE_PATH);
const text = renderConfigReference();

if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(file, 'utf8');
  } catch {
    // missing: out of date
  }
  if (current !== text) {
    process.stderr.write(`${REFERENCE_PATH} is out of date: run npm run docs:config\n`);
    process.exit(1);
  }
  process.stdout.write(`${REFERENCE_PATH} is up to date\n`);
} else {
  writeFileSync(file, text);
  process.stdout.write(`wrote ${REFERENCE_PATH}\n`);
}
