/**
 * A small JSON Schema (2020-12) validator for the subset the OpenAPI document uses (what
 * `z.toJSONSchema` writes). A keyword it does not know is an error, never silently passed, so the
 * check cannot go blind when the generator starts writing something new.
 */

export type Schema = Record<string, unknown> | boolean;

/** Keywords that describe and do not constrain. */
const ANNOTATIONS = new Set(['description', 'examples', 'deprecated', 'title', 'default', 'format', '$id', 'readOnly', 'writeOnly']);
const KNOWN = new Set([
  ...ANNOTATIONS, '$ref', 'type', 'const', 'enum', 'properties', 'required', 'additionalProperties', 'propertyNames', 'items', 'prefixItems',
  'anyOf', 'oneOf', 'allOf', 'not', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf', 'minLength', 'maxLength', 'pattern',
  'minItems', 'maxItems', 'minProperties', 'maxProperties',
]);

export class SchemaValidator {
  constructor(private readonly resolveRef: (ref: string) => Schema) {}

  /** The problems of `value` against `schema` (empty: valid). `at` is a JSON pointer for messages. */
  errors(schema: Schema, value: unknown, at = ''): string[] {
    if (schema === true) return [];
    if (schema === false) return [`${at || '/'}: no value is allowed here`];
    const out: string[] = [];
    for (const k of Object.keys(schema)) if (!KNOWN.has(k)) out.push(`${at || '/'}: the validator does not know the keyword '${k}'`);
    if (out.length) return out;
    const s = schema as Record<string, unknown>;
    if (typeof s.$ref === 'string') out.push(...this.errors(this.resolveRef(s.$ref), value, at));
    if (s.type !== undefined && !typeMatches(s.type as string | string[], value)) return [...out, `${at || '/'}: expected type ${JSON.stringify(s.type)}, got ${kindOf(value)}`];
    if ('const' in s && !deepEqual(s.const, value)) out.push(`${at || '/'}: expected ${JSON.stringify(s.const)}, got ${JSON.stringify(value)}`);
    if (Array.isArray(s.enum) && !s.enum.some((e) => deepEqual(e, value))) out.push(`${at || '/'}: ${JSON.stringify(value)} is not one of ${JSON.stringify(s.enum)}`);
    if (typeof value === 'number') out.push(...numberErrors(s, value, at));
    if (typeof value === 'string') out.push(...stringErrors(s, value, at));
    if (Array.isArray(value)) out.push(...this.arrayErrors(s, value, at));
    else if (typeof value === 'object' && value !== null) out.push(...this.objectErrors(s, value as Record<string, unknown>, at));
    if (Array.isArray(s.allOf)) for (const sub of s.allOf as Schema[]) out.push(...this.errors(sub, value, at));
    if (Array.isArray(s.anyOf)) {
      const results = (s.anyOf as Schema[]).map((sub) => this.errors(sub, value, at));
      if (!results.some((r) => r.length === 0)) out.push(`${at || '/'}: matches none of anyOf (${results.map((r) => r[0]).join(' | ')})`);
    }
    if (Array.isArray(s.oneOf)) {
      const n = (s.oneOf as Schema[]).filter((sub) => this.errors(sub, value, at).length === 0).length;
      if (n !== 1) out.push(`${at || '/'}: matches ${n} of oneOf, expected exactly 1`);
    }
    if (s.not !== undefined && this.errors(s.not as Schema, value, at).length === 0) out.push(`${at || '/'}: matches a schema it must not`);
    return out;
  }

  private arrayErrors(s: Record<string, unknown>, value: unknown[], at: string): string[] {
    const out: string[] = [];
    if (typeof s.minItems === 'number' && value.length < s.minItems) out.push(`${at}: at least ${s.minItems} items, got ${value.length}`);
    if (typeof s.maxItems === 'number' && value.length > s.maxItems) out.push(`${at}: at most ${s.maxItems} items, got ${value.length}`);
    const prefix = (s.prefixItems as Schema[] | undefined) ?? [];
    value.forEach((v, i) => {
      const sub = i < prefix.length ? prefix[i] : (s.items as Schema | undefined);
      if (sub !== undefined) out.push(...this.errors(sub, v, `${at}/${i}`));
    });
    return out;
  }

  private objectErrors(s: Record<string, unknown>, value: Record<string, unknown>, at: string): string[] {
    const out: string[] = [];
    const props = (s.properties ?? {}) as Record<string, Schema>;
    for (const r of (s.required as string[] | undefined) ?? []) if (!(r in value)) out.push(`${at}: the required field '${r}' is missing`);
    const keys = Object.keys(value);
    if (typeof s.minProperties === 'number' && keys.length < s.minProperties) out.push(`${at}: at least ${s.minProperties} fields`);
    if (typeof s.maxProperties === 'number' && keys.length > s.maxProperties) out.push(`${at}: at most ${s.maxProperties} fields`);
    for (const k of keys) {
      if (s.propertyNames !== undefined) out.push(...this.errors(s.propertyNames as Schema, k, `${at}/${k} (name)`));
      if (k in props) out.push(...this.errors(props[k]!, value[k], `${at}/${k}`));
      else if (s.additionalProperties === false) out.push(`${at}: the field '${k}' is not declared`);
      else if (s.additionalProperties !== undefined) out.push(...this.errors(s.additionalProperties as Schema, value[k], `${at}/${k}`));
    }
    return out;
  }
}

function numberErrors(s: Record<string, unknown>, v: number, at: string): string[] {
  const out: string[] = [];
  if (typeof s.minimum === 'number' && v < s.minimum) out.push(`${at}: ${v} is below the minimum ${s.minimum}`);
  if (typeof s.maximum === 'number' && v > s.maximum) out.push(`${at}: ${v} is above the maximum ${s.maximum}`);
  if (typeof s.exclusiveMinimum === 'number' && v <= s.exclusiveMinimum) out.push(`${at}: ${v} is not above ${s.exclusiveMinimum}`);
  if (typeof s.exclusiveMaximum === 'number' && v >= s.exclusiveMaximum) out.push(`${at}: ${v} is not below ${s.exclusiveMaximum}`);
  if (typeof s.multipleOf === 'number' && v % s.multipleOf !== 0) out.push(`${at}: ${v} is not a multiple of ${s.multipleOf}`);
  return out;
}

function stringErrors(s: Record<string, unknown>, v: string, at: string): string[] {
  const out: string[] = [];
  const len = [...v].length;
  if (typeof s.minLength === 'number' && len < s.minLength) out.push(`${at}: shorter than ${s.minLength}`);
  if (typeof s.maxLength === 'number' && len > s.maxLength) out.push(`${at}: longer than ${s.maxLength}`);
  if (typeof s.pattern === 'string' && !new RegExp(s.pattern, 'u').test(v)) out.push(`${at}: ${JSON.stringify(v.slice(0, 80))} does not match ${s.pattern}`);
  return out;
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function typeMatches(type: string | string[], v: unknown): boolean {
  const types = Array.isArray(type) ? type : [type];
  const k = kindOf(v);
  return types.some((t) => t === k || (t === 'number' && k === 'integer'));
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
