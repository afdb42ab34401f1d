-- Closes a run with a reported outcome (async completion), atomically: only a run still PENDING or
-- RUNNING closes; with expire = 1 only one whose deadline has passed. The task's last_status follows.
-- KEYS[1]: the slot's key base.
-- ARGV: run_id, status (SUCCESS|FAIL), message ('' = null, else marker + text), output (same),
--       now, expire (0|1)
-- A report (not an expiry) closes only a run that awaits one: its task completes async, or its
-- callback answered 202 (the run has a deadline). Any other open run is a sync run decided by its
-- callback's answers, and is refused whatever phase it is in (checked here, in the same script as
-- the write, so no window remains): 'retrying' when it is between two attempts (marked by
-- updateRuns), else 'not_awaiting' (not sent yet, or an attempt in flight whose answer is unknown).
-- Returns {result, run}: result closed | same | conflict | not_open | retrying | not_awaiting |
-- not_found; run a flat hash (empty when not found).
--@include _lib.lua
local base = KEYS[1]
local run_id, status, message, output, now, expire = ARGV[1], ARGV[2], opt(ARGV[3]), opt(ARGV[4]), ARGV[5], ARGV[6] == '1'
local rk = base .. ':r:' .. run_id
local cur = redis.call('HMGET', rk, 'status', 'deadline', 'start_time', 'scheduled_time', 'task_id', 'created', 'retrying')
if not cur[1] then return {'not_found', {}} end
local open = cur[1] == 'PENDING' or cur[1] == 'RUNNING'
if not open then
  if expire then return {'not_open', redis.call('HGETALL', rk)} end
  if cur[1] == status then return {'same', redis.call('HGETALL', rk)} end
  return {'conflict', redis.call('HGETALL', rk)}
end
if expire and (not cur[2] or tonumber(cur[2]) > tonumber(now)) then return {'not_open', redis.call('HGETALL', rk)} end
if not expire and not cur[2] and redis.call('HGET', base .. ':t:' .. cur[5], 'j:completion') ~= '"async"' then
  if cur[7] == '1' then return {'retrying', redis.call('HGETALL', rk)} end
  return {'not_awaiting', redis.call('HGETALL', rk)}
end
local err = nil
if status == 'FAIL' then
  if expire then err = 'timeout' else err = message or 'reported FAIL' end
end
local start = cur[3] or now
redis.call('HSET', rk, 'status', status, 'end_time', now, 'start_time', start,
  'duration_ms', tonumber(now) - tonumber(cur[3] or cur[4]))
hset_or_del(rk, 'message', message)
hset_or_del(rk, 'output', output)
hset_or_del(rk, 'error', err)
redis.call('HDEL', rk, 'deadline', 'retrying')
count_status(base, cur[1], status)
redis.call('ZREM', base .. ':open', run_id)
redis.call('ZADD', base .. ':done', cur[6] or '0', run_id)
if status == 'FAIL' then redis.call('ZADD', base .. ':fail', cur[4], run_id) end
local tally = {}
report_tally(tally, status, cur[4], start)
report_flush(base, tally)
local tk = base .. ':t:' .. cur[5]
if redis.call('EXISTS', tk) == 1 then redis.call('HSET', tk, 'last_status', status) end
return {'closed', redis.call('HGETALL', rk)}
