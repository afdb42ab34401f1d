-- Deletes completed tasks of one slot (and their runs) last changed before a time, a bounded
-- number per call. `B:completed` holds the completed tasks by update_time.
-- KEYS[1]: the slot's key base.
-- ARGV: older_than, budget
-- Returns {more (0|1), id, idempotency_key ('' = none), id, idempotency_key, ...} of the deleted
-- tasks (the caller releases their idempotency keys, which live outside the slot).
--@include _lib.lua
local base = KEYS[1]
local budget = tonumber(ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', base .. ':completed', '-inf', '(' .. ARGV[1], 'LIMIT', 0, budget)
local out = {0}
if #ids == budget then out[1] = 1 end
for _, id in ipairs(ids) do
  local cur = redis.call('HMGET', base .. ':t:' .. id, 'state', 'idempotency_key')
  if cur[1] == 'completed' then
    drop_task(base, id)
    out[#out + 1] = id
    out[#out + 1] = cur[2] or ''
  else
    redis.call('ZREM', base .. ':completed', id)
  end
end
return out
