/**
 * Renders docs/configuration-reference.md from the configuration schema (src/config/index.ts) and
 * the key descriptions next to it (src/config/descriptions.ts). Pure: no file is written here;
 * scripts/gen-config-docs.ts writes or checks the file, and a test compares it with this rendering.
 */
import { z } from 'zod';
import { applyEnv, configSchema } from '../src/config/index.js';
import { KEY_DESCRIPTIONS, SECTION_DESCRIPTIONS } from '../src/config/descriptions.js';

export const REFERENCE_PATH = 'docs/configuration-reference.md';

/** The subset of JSON Schema that zod writes for this schema. */
interface JsonSchema {
  type?: string;
  default?: unknown;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  maxItems?: number;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  /** A section of named tables (`[targets.<name>]`): the schema of one table. */
  additionalProperties?: JsonSchema;
}

/** The environment variable that overrides a key, as `applyEnv` in src/config/index.ts names it. */
export function envName(section: string | null, key: string): string {
  return (section === null ? `XCRON_${key}` : `XCRON_${section}_${key}`).toUpperCase();
}

const num = (n: number): string => (Number.isInteger(n) && Math.abs(n) >= 10_000 ? n.toLocaleString('en-US').replace(/,/g, '_') : String(n));

/** A TOML literal of a default value. */
function toml(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') return num(v);
  if (typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(toml).join(', ')}]`;
  return JSON.stringify(v);
}

function typeOf(s: JsonSchema): string {
  if (s.enum) return s.enum.map((e) => JSON.stringify(e)).join(' | ');
  if (s.type === 'array') {
    const item = s.items ?? {};
    if (item.type === 'object') return `list of { ${Object.keys(item.properties ?? {}).map((k) => (item.required?.includes(k) ? k : `${k}?`)).join(', ')} }`;
    return `list of ${typeOf(item)}`;
  }
  return s.type ?? 'any';
}

function rangeOf(s: JsonSchema): string {
  const parts: string[] = [];
  if (s.minimum !== undefined || s.maximum !== undefined) {
    parts.push(`${s.minimum !== undefined ? num(s.minimum) : '…'} … ${s.maximum !== undefined ? num(s.maximum) : '…'}`);
  }
  if (s.minLength !== undefined && s.maxLength !== undefined) parts.push(`${s.minLength}-${s.maxLength} characters`);
  else if (s.minLength !== undefined && s.minLength > 0) parts.push(`at least ${s.minLength} character${s.minLength === 1 ? '' : 's'}`);
  else if (s.maxLength !== undefined) parts.push(`at most ${s.maxLength} characters`);
  if (s.type === 'array') {
    if (s.maxItems !== undefined) parts.push(`at most ${num(s.maxItems)} items`);
    const item = s.items ?? {};
    if (item.type === 'string' && item.minLength !== undefined && item.minLength > 0) parts.push(`each at least ${item.minLength} characters`);
  }
  return parts.join('; ') || '—';
}

/** The text an environment variable would carry for a value (lists as JSON arrays). */
function envText(v: unknown): string {
  if (Array.isArray(v)) return JSON.stringify(v);
  return String(v);
}

/**
 * Checks that the documented variable is the one `applyEnv` accepts for this key: it must land on
 * exactly that key. Throws when the naming rule here and the one in src/config drift apart.
 */
function checkEnv(section: string | null, key: string, value: unknown): void {
  const name = envName(section, key);
  const out = applyEnv({}, { [name]: envText(value) });
  const got = section === null ? out[key] : (out[section] as Record<string, unknown> | undefined)?.[key];
  if (JSON.stringify(got) !== JSON.stringify(value)) {
    throw new Error(`${name} does not set ${section === null ? key : `${section}.${key}`} (got ${JSON.stringify(got)})`);
  }
}

function escapeCell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function table(section: string | null, props: Record<string, JsonSchema>, descriptions: Record<string, string>): string[] {
  const rows = ['| key | type | default | range | environment | meaning |', '|---|---|---|---|---|---|'];
  for (const [key, s] of Object.entries(props)) {
    const text = descriptions[key];
    if (text === undefined) throw new Error(`no description for ${section === null ? key : `${section}.${key}`} in src/config/descriptions.ts`);
    checkEnv(section, key, s.default);
    rows.push(`| \`${key}\` | ${escapeCell(typeOf(s))} | \`${escapeCell(toml(s.default))}\` | ${escapeCell(rangeOf(s))} | \`${envName(section, key)}\` | ${escapeCell(text)} |`);
  }
  for (const key of Object.keys(descriptions)) {
    if (!(key in props)) throw new Error(`src/config/descriptions.ts describes ${section === null ? key : `${section}.${key}`}, which the schema does not have`);
  }
  return rows;
}

/** The keys of one named table (no environment variables: set in the file only). */
function namedTable(section: string, props: Record<string, JsonSchema>, required: string[], descriptions: Record<string, string>): string[] {
  const rows = ['| key | type | default | range | meaning |', '|---|---|---|---|---|'];
  for (const [key, s] of Object.entries(props)) {
    const text = descriptions[key];
    if (text === undefined) throw new Error(`no description for ${section}.<name>.${key} in src/config/descriptions.ts`);
    const dflt = s.default === undefined ? (required.includes(key) ? 'required' : '—') : `\`${escapeCell(toml(s.default))}\``;
    rows.push(`| \`${key}\` | ${escapeCell(typeOf(s))} | ${dflt} | ${escapeCell(rangeOf(s))} | ${escapeCell(text)} |`);
  }
  for (const key of Object.keys(descriptions)) {
    if (!(key in props)) throw new Error(`src/config/descriptions.ts describes ${section}.<name>.${key}, which the schema does not have`);
  }
  return rows;
}

export function renderConfigReference(): string {
  const root = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const props = root.properties ?? {};
  const topLevel: Record<string, JsonSchema> = {};
  const sections: [string, JsonSchema][] = [];
  const named: [string, JsonSchema][] = [];
  for (const [key, s] of Object.entries(props)) {
    if (s.type === 'object' && s.properties) sections.push([key, s]);
    else if (s.type === 'object' && s.additionalProperties?.properties) named.push([key, s.additionalProperties]);
    else topLevel[key] = s;
  }
  const described = KEY_DESCRIPTIONS as unknown as Record<string, string | Record<string, string>>;
  const topTexts: Record<string, string> = {};
  for (const [k, v] of Object.entries(described)) if (typeof v === 'string') topTexts[k] = v;

  const out: string[] = [
    '<!-- Generated by `npm run docs:config` from src/config/index.ts and src/config/descriptions.ts. Do not edit by hand. -->',
    '',
    '# Configuration reference',
    '',
    'xcron reads `./xcron.toml`, or the file given with `./xcron_server --config PATH` (or `XCRON_CONFIG=PATH`).',
    'A missing `./xcron.toml` is fine (every key has a default); a missing file named explicitly is an error.',
    '',
    'Every key can be overridden from the environment: `XCRON_<KEY>` for a top-level key,',
    '`XCRON_<SECTION>_<KEY>` for a key in a section (the **environment** column). Numbers and booleans',
    '(`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`) are parsed; lists come as a JSON array or a',
    'comma-separated list; `auth.tokens` as a JSON array of objects.',
    '',
    'An unknown key (in the file or as an `XCRON_*` variable), a wrong type or an out-of-range value stops',
    'the start with a message naming the key (exit code 2). The configuration is read once at start.',
    '',
    '`config/xcron.example.toml` is a commented example file; this page is the reference.',
    '',
    '## Top level',
    '',
    ...table(null, topLevel, topTexts),
  ];
  for (const [name, s] of sections) {
    const texts = described[name];
    if (typeof texts !== 'object') throw new Error(`no descriptions for section [${name}] in src/config/descriptions.ts`);
    const intro = (SECTION_DESCRIPTIONS as Record<string, string>)[name];
    if (intro === undefined) throw new Error(`no section description for [${name}] in src/config/descriptions.ts`);
    out.push('', `## [${name}]`, '', intro, '', ...table(name, s.properties ?? {}, texts));
  }
  for (const [name, s] of named) {
    const texts = described[name];
    if (typeof texts !== 'object') throw new Error(`no descriptions for [${name}.<name>] in src/config/descriptions.ts`);
    const intro = (SECTION_DESCRIPTIONS as Record<string, string>)[name];
    if (intro === undefined) throw new Error(`no section description for [${name}] in src/config/descriptions.ts`);
    out.push('', `## [${name}.<name>]`, '', intro, '', ...namedTable(name, s.properties ?? {}, s.required ?? [], texts));
  }
  out.push('', '## Rules across keys', '',
    '- `scheduler.scan_interval_ms` must be smaller than `scheduler.lookahead_ms`.',
    '- `delivery.max_backoff_ms` must be at least `delivery.backoff_ms`.',
    '- `default_timezone` must be a time zone name the runtime knows (IANA).',
    '- `alert.webhook_url`, when set, must be an absolute http(s) URL.',
    '- `cluster.min_replica_acks` above 0 cannot be combined with `cluster.redis_cluster = true`.',
    '- `targets.<name>.url` must use the scheme of its `kind`; `redis_stream` needs `stream`, `amqp` needs `exchange` or `routing_key`, `nats` needs `subject`.',
    '- `results.url` must use the scheme of `results.kind`.',
    '');
  return out.join('\n');
}
