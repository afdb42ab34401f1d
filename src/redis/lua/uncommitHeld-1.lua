-- Undoes a task's fire committed ahead of its due time and not yet claimed by its owner (see
-- commitFires and claimFires), before the API changes the task: the run is removed and the task
-- row restored as before that commit (its tick next again, a one-shot active again, run_count and
-- last_fire_time back). Nothing is undone if the run moved on (an attempt started) or the task no
-- longer shows that commit; the marker is then dropped.
-- KEYS[1]: the slot's key base.
-- ARGV: task_id
-- Returns 1 when undone, 0 otherwise.
--@include _lib.lua
local base = KEYS[1]
local id = ARGV[1]
local tk = base .. ':t:' .. id
local h = redis.call('HMGET', tk, 'h_run', 'h_tick', 'h_last', 'state', 'last_fire_time')
if not h[1] then return 0 end
local run_id, tick, last, state = h[1], h[2], h[3], h[4]
local r = redis.call('HMGET', base .. ':r:' .. run_id, 'status', 'attempts')
if r[1] ~= 'PENDING' or r[2] ~= '0' or h[5] ~= tick or (state ~= 'active' and state ~= 'completed') then
  redis.call('HDEL', tk, 'h_run', 'h_tick', 'h_last')
  return 0
end
drop_run(base, run_id)
if state == 'completed' then
  redis.call('HSET', tk, 'state', 'active')
  redis.call('ZREM', base .. ':st:completed', id)
  redis.call('ZREM', base .. ':completed', id)
  redis.call('ZADD', base .. ':st:active', 0, id)
end
redis.call('HSET', tk, 'next_fire_time', tick)
redis.call('ZADD', base .. ':due', tick, id)
redis.call('HINCRBY', tk, 'run_count', -1)
if last == '' then redis.call('HDEL', tk, 'last_fire_time') else redis.call('HSET', tk, 'last_fire_time', last) end
redis.call('HDEL', tk, 'h_run', 'h_tick', 'h_last')
return 1
