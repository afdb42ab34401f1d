-- Records a retry of a finished FAIL run (retryRun): a new PENDING run in the outbox with the
-- original's one-off request (if any), run_count + 1, last_fire_time = its scheduled time; the
-- original gets retried_by. Not fenced, like a manual fire: the slot's owner delivers it.
-- KEYS[1]: the slot's key base.
-- ARGV: original run_id, new run_id, task_id, scheduled_time, node, now
-- Returns {result, original run (flat hash, empty when not found)}: result committed | not_found |
-- not_failed | retried | task_gone.
--@include _lib.lua
local base = KEYS[1]
local slot = string.match(base, ':(%d+)}$')
local of, run_id, id, scheduled, node, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local ok = base .. ':r:' .. of
local rk = base .. ':r:' .. run_id
local tk = base .. ':t:' .. id
local cur = redis.call('HMGET', ok, 'status', 'retried_by', 'j:request')
if not cur[1] then return {'not_found', {}} end
if cur[1] ~= 'FAIL' then return {'not_failed', redis.call('HGETALL', ok)} end
if cur[2] or redis.call('EXISTS', rk) == 1 then return {'retried', redis.call('HGETALL', ok)} end
if redis.call('EXISTS', tk) == 0 then return {'task_gone', redis.call('HGETALL', ok)} end
redis.call('HINCRBY', tk, 'run_count', 1)
redis.call('HSET', tk, 'last_fire_time', scheduled, 'update_time', now)
local run = {'run_id', run_id, 'task_id', id, 'slot', slot, 'node', node,
  'scheduled_time', scheduled, 'attempts', 0, 'status', 'PENDING', 'created', now}
put(run, 'j:request', cur[3] or nil)
redis.call('HSET', rk, unpack(run))
redis.call('ZADD', base .. ':runs:' .. id, scheduled, run_id)
redis.call('ZADD', base .. ':open', scheduled, run_id)
redis.call('ZADD', base .. ':all', scheduled, run_id)
count_status(base, nil, 'PENDING')
redis.call('HSET', ok, 'retried_by', run_id)
return {'committed', redis.call('HGETALL', ok)}
