-- Creates a task in its slot (the idempotency key is claimed before, in its own key).
-- KEYS[1]: the slot's key base "{<prefix>:<slot>}"
-- ARGV: id, state, next_fire_time ('' = none), then hash field/value pairs
-- Returns 1 (created) or 0 (the id exists).
--@include _lib.lua
local base = KEYS[1]
local id, state, nxt = ARGV[1], ARGV[2], ARGV[3]
local tk = base .. ':t:' .. id
if redis.call('EXISTS', tk) == 1 then return 0 end
redis.call('HSET', tk, unpack(ARGV, 4))
redis.call('ZADD', base .. ':ids', 0, id)
redis.call('ZADD', base .. ':st:' .. state, 0, id)
if state == 'active' and nxt ~= '' then
  redis.call('ZADD', base .. ':due', nxt, id)
end
if state == 'completed' then
  redis.call('ZADD', base .. ':completed', redis.call('HGET', tk, 'update_time') or 0, id)
end
return 1
