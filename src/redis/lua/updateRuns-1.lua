-- Applies run updates of one slot: RUNNING (attempts, node, start time) or a final outcome
-- (SUCCESS | FAIL) that also sets the task's last_status and moves the run out of the outbox.
-- Only runs still PENDING or RUNNING change (a final state is final); a RUNNING update of a run
-- already closed only fills in attempts, node, start_time and http_status where they are missing.
-- KEYS[1]: the slot's key base.
-- ARGV[1]: a JSON array of strings, 14 per update: run_id, task_id, status, attempts, then
--       nullable (marker + value, '' = null): node, start_time, end_time, http_status, error,
--       duration_ms, response_body, shards (JSON), deadline (RUNNING only: '' = keep,
--       '!' = clear, marker + value = set), and retrying (RUNNING only: '' = keep, '1' = set,
--       '0' = clear). One argument for the batch (see commitFires).
-- `retrying` marks a run whose attempt failed with another to come: reportRun refuses a report
-- for it (a sync run) until its next answer. A deadline set (an answer 202) or a final outcome
-- clears it.
-- Returns the number of runs changed.
-- Writes are merged: one HSET (and at most one HDEL) per run; the slot's sorted sets (open, done,
-- fail) and status counters once per batch. The task's last_status is written without checking
-- that the task exists: a run record exists only while its task does (drop_task removes a task's
-- runs with it), and only runs found here are updated.
--@include _lib.lua
local base = KEYS[1]
local A = cjson.decode(ARGV[1])
local changed = 0
local delta = {}
local tally = {}
local zb = {}
local function move(from, to)
  delta[from] = (delta[from] or 0) - 1
  delta[to] = (delta[to] or 0) + 1
end
-- The fields a final outcome sets, or clears when null (in ARGV order from offset 6).
local FINAL = {'end_time', 'http_status', 'error', 'duration_ms', 'response_body', 'j:shards'}
for i = 1, #A, 14 do
  local run_id, task_id, status, attempts = A[i], A[i + 1], A[i + 2], tonumber(A[i + 3])
  local rk = base .. ':r:' .. run_id
  local cur = redis.call('HMGET', rk, 'status', 'attempts', 'start_time', 'created',
    'end_time', 'http_status', 'error', 'duration_ms', 'response_body', 'j:shards', 'deadline', 'retrying', 'scheduled_time')
  if cur[1] == 'PENDING' or cur[1] == 'RUNNING' then
    changed = changed + 1
    local set, del = {}, {}
    if attempts > tonumber(cur[2] or '0') then put(set, 'attempts', A[i + 3]) end
    put(set, 'node', opt(A[i + 4]))
    if not cur[3] then put(set, 'start_time', opt(A[i + 5])) end
    if status ~= cur[1] then
      put(set, 'status', status)
      move(cur[1], status)
    end
    if status == 'RUNNING' then
      put(set, 'http_status', opt(A[i + 7]))
      local dl = A[i + 12]
      if dl == '!' then
        if cur[11] then del[#del + 1] = 'deadline' end
      elseif dl ~= '' then
        put(set, 'deadline', string.sub(dl, 2))
      end
      local rt = A[i + 13]
      if rt == '1' and (dl == '' or dl == '!') then
        put(set, 'retrying', '1')
      elseif (rt == '0' or (dl ~= '' and dl ~= '!')) and cur[12] then
        del[#del + 1] = 'retrying'
      end
    else
      if cur[12] then del[#del + 1] = 'retrying' end
      for f = 1, 6 do
        local v = opt(A[i + 5 + f])
        if v ~= nil then
          put(set, FINAL[f], v)
        elseif cur[4 + f] then
          del[#del + 1] = FINAL[f]
        end
      end
    end
    if #set > 0 then redis.call('HSET', rk, unpack(set)) end
    if #del > 0 then redis.call('HDEL', rk, unpack(del)) end
    if status ~= 'RUNNING' then
      zb_rem(zb, base .. ':open', run_id)
      zb_add(zb, base .. ':done', cur[4] or '0', run_id)
      if cur[13] then
        if status == 'FAIL' then zb_add(zb, base .. ':fail', cur[13], run_id) end
        report_tally(tally, status, cur[13], cur[3] or opt(A[i + 5]))
      end
      redis.call('HSET', base .. ':t:' .. task_id, 'last_status', status)
    end
  elseif cur[1] and status == 'RUNNING' then
    -- Closed already (an async worker reported before this update): the outcome stays, and the
    -- callback's own facts that are still missing are filled in.
    local set = {}
    if attempts > tonumber(cur[2] or '0') then put(set, 'attempts', A[i + 3]) end
    local node = opt(A[i + 4])
    if node then redis.call('HSETNX', rk, 'node', node) end
    if not cur[3] then put(set, 'start_time', opt(A[i + 5])) end
    if not cur[6] then put(set, 'http_status', opt(A[i + 7])) end
    if #set > 0 then redis.call('HSET', rk, unpack(set)) end
  end
end
zb_flush(zb)
for s, n in pairs(delta) do
  if n ~= 0 then redis.call('HINCRBY', base .. ':runstat', s, n) end
end
report_flush(base, tally)
return changed
