-- Every registered instance, after removing those expired before now - keep_ms.
-- ARGV: now, keep_ms. Returns HGETALL's {field, value, ...}.
--@include _exec.lua
execPurge(KEYS[1], tonumber(ARGV[1]) - tonumber(ARGV[2]))
return redis.call('HGETALL', KEYS[1])
