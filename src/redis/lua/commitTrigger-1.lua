-- Records a manual fire (triggerTask, child tasks): a PENDING run in the outbox, run_count + 1,
-- last_fire_time = its scheduled time; the schedule is untouched. Not fenced: any node may record
-- it, and the slot's owner delivers it.
-- KEYS[1]: the slot's key base.
-- ARGV: task_id, run_id, scheduled_time, node, now, request ('' = none, else marker + the run's
--       one-off request as JSON)
-- Returns 'committed', or 'conflict' when the task is gone or the run_id is taken.
--@include _lib.lua
local base = KEYS[1]
local slot = string.match(base, ':(%d+)}$')
local id, run_id, scheduled, node, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local tk = base .. ':t:' .. id
local rk = base .. ':r:' .. run_id
if redis.call('EXISTS', rk) == 1 or redis.call('EXISTS', tk) == 0 then return 'conflict' end
redis.call('HINCRBY', tk, 'run_count', 1)
redis.call('HSET', tk, 'last_fire_time', scheduled, 'update_time', now)
redis.call('HSET', rk, 'run_id', run_id, 'task_id', id, 'slot', slot, 'node', node,
  'scheduled_time', scheduled, 'attempts', 0, 'status', 'PENDING', 'created', now)
redis.call('ZADD', base .. ':runs:' .. id, scheduled, run_id)
redis.call('ZADD', base .. ':open', scheduled, run_id)
redis.call('ZADD', base .. ':all', scheduled, run_id)
local request = opt(ARGV[6] or '')
if request then redis.call('HSET', rk, 'j:request', request) end
count_status(base, nil, 'PENDING')
return 'committed'
