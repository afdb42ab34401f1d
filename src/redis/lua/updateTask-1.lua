-- Changes a task if it is still as the caller read it (state and next_fire_time), keeping the
-- due set and the per-state listing sets in step. The API undoes a held fire first (uncommitHeld).
-- KEYS[1]: the slot's key base.
-- ARGV: id, expected_state, expected_next ('' = null), graph deadline ('' = the children are not
--       changed; else the ms by which a change of on_success must land, from graphReserve: a later
--       write is a conflict, and the caller reserves again), n (number of field/value pairs to
--       set), the n pairs, then the fields to delete (set to null)
-- Returns 0 (gone), 1 (conflict) or the changed task (flat hash).
--@include _lib.lua
local base = KEYS[1]
local id = ARGV[1]
local tk = base .. ':t:' .. id
local cur = redis.call('HMGET', tk, 'state', 'next_fire_time')
if not cur[1] then return 0 end
if cur[1] ~= ARGV[2] or (cur[2] or '') ~= ARGV[3] then return 1 end
if ARGV[4] ~= '' then
  local t = redis.call('TIME')
  if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(ARGV[4]) then return 1 end
  -- The graph write's rev: graphSettle records the children of the newest write.
  redis.call('HINCRBY', tk, 'g_rev', 1)
end
local n = tonumber(ARGV[5])
if n > 0 then redis.call('HSET', tk, unpack(ARGV, 6, 5 + 2 * n)) end
if #ARGV > 5 + 2 * n then redis.call('HDEL', tk, unpack(ARGV, 6 + 2 * n)) end
-- A fire held ahead of its due time (see uncommitHeld) is no longer undoable once the task changed.
redis.call('HDEL', tk, 'h_run', 'h_tick', 'h_last')
local now = redis.call('HMGET', tk, 'state', 'next_fire_time')
if now[1] ~= cur[1] then
  redis.call('ZREM', base .. ':st:' .. cur[1], id)
  redis.call('ZADD', base .. ':st:' .. now[1], 0, id)
end
if now[1] == 'completed' then
  redis.call('ZADD', base .. ':completed', redis.call('HGET', tk, 'update_time') or 0, id)
else
  redis.call('ZREM', base .. ':completed', id)
end
if now[1] == 'active' and now[2] then
  redis.call('ZADD', base .. ':due', now[2], id)
else
  redis.call('ZREM', base .. ':due', id)
end
return redis.call('HGETALL', tk)
