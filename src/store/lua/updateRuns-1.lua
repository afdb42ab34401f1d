-- Applies run updates of one slot: RUNNING (attempts, node, start time) or a final outcome
-- (SUCCESS | FAIL) that also sets the task's last_status and moves the run out of the outbox.
-- Only runs still PENDING or RUNNING change (a final state is final); a RUNNING update of a run
-- already closed only fills in attempts, node, start_time and http_status where they are missing.
-- KEYS[1]: the slot's key base.
-- ARGV: 13 values per update: run_id, task_id, status, attempts, then nullable (marker + value,
--       '' = null): node, start_time, end_time, http_status, error, duration_ms, response_body,
--       shards (JSON), and deadline (RUNNING only: '' = keep, '!' = clear, marker + value = set)
-- Returns the number of runs changed.
--@include _lib.lua
local base = KEYS[1]
local changed = 0
for i = 1, #ARGV, 13 do
  local run_id, task_id, status, attempts = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local rk = base .. ':r:' .. run_id
  local cur = redis.call('HMGET', rk, 'status', 'attempts', 'start_time', 'created')
  if cur[1] == 'PENDING' or cur[1] == 'RUNNING' then
    changed = changed + 1
    if attempts > tonumber(cur[2] or '0') then redis.call('HSET', rk, 'attempts', attempts) end
    local node = opt(ARGV[i + 4])
    if node then redis.call('HSET', rk, 'node', node) end
    local start = opt(ARGV[i + 5])
    if start and not cur[3] then redis.call('HSET', rk, 'start_time', start) end
    if status ~= cur[1] then
      redis.call('HSET', rk, 'status', status)
      count_status(base, cur[1], status)
    end
    if status == 'RUNNING' then
      local hs = opt(ARGV[i + 7])
      if hs then redis.call('HSET', rk, 'http_status', hs) end
      local dl = ARGV[i + 12]
      if dl == '!' then redis.call('HDEL', rk, 'deadline')
      elseif dl ~= '' then redis.call('HSET', rk, 'deadline', string.sub(dl, 2)) end
    else
      hset_or_del(rk, 'end_time', opt(ARGV[i + 6]))
      hset_or_del(rk, 'http_status', opt(ARGV[i + 7]))
      hset_or_del(rk, 'error', opt(ARGV[i + 8]))
      hset_or_del(rk, 'duration_ms', opt(ARGV[i + 9]))
      hset_or_del(rk, 'response_body', opt(ARGV[i + 10]))
      hset_or_del(rk, 'j:shards', opt(ARGV[i + 11]))
      redis.call('ZREM', base .. ':open', run_id)
      redis.call('ZADD', base .. ':done', cur[4] or '0', run_id)
      local tk = base .. ':t:' .. task_id
      if redis.call('EXISTS', tk) == 1 then redis.call('HSET', tk, 'last_status', status) end
    end
  elseif cur[1] and status == 'RUNNING' then
    -- Closed already (an async worker reported before this update): the outcome stays, and the
    -- callback's own facts that are still missing are filled in.
    if attempts > tonumber(cur[2] or '0') then redis.call('HSET', rk, 'attempts', attempts) end
    local node = opt(ARGV[i + 4])
    if node then redis.call('HSETNX', rk, 'node', node) end
    local start = opt(ARGV[i + 5])
    if start then redis.call('HSETNX', rk, 'start_time', start) end
    local hs = opt(ARGV[i + 7])
    if hs then redis.call('HSETNX', rk, 'http_status', hs) end
  end
end
return changed
