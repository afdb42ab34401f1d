-- Registers or refreshes an executor instance (the heartbeat).
-- ARGV: group, address, ttl_ms, now, meta JSON ('' for none), keep_ms (how long expired instances stay listed).
-- Returns {created (1/0), registered_at}.
--@include _exec.lua
local h = KEYS[1]
local g, a = ARGV[1], ARGV[2]
local ttl, now = tonumber(ARGV[3]), tonumber(ARGV[4])
execPurge(h, now - tonumber(ARGV[6]))
local f = g .. '\n' .. a
local prev = redis.call('HGET', h, f)
local reg = ARGV[4]
local created = 1
if prev then
  created = 0
  local p1 = string.find(prev, '|', 1, true)
  local p2 = string.find(prev, '|', p1 + 1, true)
  local p3 = string.find(prev, '|', p2 + 1, true)
  reg = string.sub(prev, p2 + 1, p3 - 1)
end
redis.call('HSET', h, f, ARGV[4] .. '|' .. ARGV[3] .. '|' .. reg .. '|' .. ARGV[5])
redis.call('ZADD', h .. ':exp', now + ttl, f)
redis.call('ZADD', h .. ':g:' .. g, now + ttl, a)
return {created, reg}
