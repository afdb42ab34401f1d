/**
 * The shared Redis layer (below the store): URL parsing, connections (one Redis, Sentinel, Redis
 * Cluster), the Lua script loader and the key builder. Used by the Redis store, cluster ownership
 * and the change feed, and export/import.
 */
export { parseRedisUrl, redactRedisUrl, type RedisEndpoint } from './url.js';
export { connectRedis, createRedisClient, isUnavailable, toStoreError, type RedisClient, type RedisConnectOptions } from './connection.js';
export { evalScript, luaScripts, script, type LuaScript } from './scripts.js';
export { RedisKeys } from './keys.js';
