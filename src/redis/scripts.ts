/**
 * The Lua scripts (src/redis/lua/<name>-<key count>.lua): one per atomic operation of the store and
 * of cluster ownership. Loaded once per process; run with EVALSHA, falling back to EVAL.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { replyCode, type RedisClient } from './connection.js';

export interface LuaScript {
  name: string;
  keys: number;
  lua: string;
  sha: string;
}

const LUA_DIR = fileURLToPath(new URL('./lua/', import.meta.url));
let scriptCache: Map<string, LuaScript> | null = null;

/**
 * The scripts of src/redis/lua: `<name>-<key count>.lua`; `--@include <file>` lines are replaced
 * by that file (helpers whose names start with `_`). Read once per process.
 */
export function luaScripts(): Map<string, LuaScript> {
  if (scriptCache) return scriptCache;
  const out = new Map<string, LuaScript>();
  for (const file of readdirSync(LUA_DIR)) {
    const m = /^([A-Za-z]+)-(\d+)\.lua$/.exec(file);
    if (!m) continue;
    const src = readFileSync(LUA_DIR + file, 'utf8');
    const lua = src.replace(/^--@include ([\w.-]+)\s*$/gm, (_, inc: string) => readFileSync(LUA_DIR + inc, 'utf8'));
    out.set(m[1]!, { name: m[1]!, keys: Number(m[2]), lua, sha: createHash('sha1').update(lua).digest('hex') });
  }
  scriptCache = out;
  return out;
}

export function script(name: string): LuaScript {
  const s = luaScripts().get(name);
  if (!s) throw new Error(`Lua script ${name} not found in ${LUA_DIR}`);
  return s;
}

/** EVALSHA, falling back to EVAL (which also caches it) when the server does not know the script. */
export async function evalScript(client: RedisClient, s: LuaScript, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
  if (keys.length !== s.keys) throw new Error(`script ${s.name} takes ${s.keys} keys, got ${keys.length}`);
  try {
    return await client.evalsha(s.sha, keys.length, ...keys, ...args);
  } catch (e) {
    if (replyCode(e) === 'NOSCRIPT') return await client.eval(s.lua, keys.length, ...keys, ...args);
    throw e;
  }
}
