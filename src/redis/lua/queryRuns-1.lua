-- Runs of one slot, newest first ((scheduled_time, run_id) descending) before a cursor, filtered
-- (GET /xcron/runs; the store merges the slots).
-- KEYS[1]: the slot's key base.
-- ARGV: index (all: every run; fail: FAIL runs; open: PENDING/RUNNING runs; task: the history of
--       task_id), task_id ('' = any), before_time ('' = from the newest), before_id, from ('' =
--       open; scheduled_time at or after), to ('' = open; at or before), status ('' = any),
--       name_prefix ('' = any), replayed ('' = any, '0' = not retried, '1' = retried), limit,
--       budget (index entries read at most)
-- Returns {exhausted (0|1), last_time, last_id, run, run, ...} (runs as flat hashes). When the
-- budget runs out, fewer than limit runs come back with exhausted 0: continue from the last read.
--@include _lib.lua
local base = KEYS[1]
local idx, task_id = ARGV[1], ARGV[2]
local key = base .. ':' .. idx
if idx == 'task' then key = base .. ':runs:' .. task_id end
local status, prefix, replayed = ARGV[7], ARGV[8], ARGV[9]
local limit, budget = tonumber(ARGV[10]), tonumber(ARGV[11])
local hi
if ARGV[3] == '' then hi = redis.call('ZCARD', key) else hi = count_before(key, ARGV[3], ARGV[4]) end
if ARGV[6] ~= '' then hi = math.min(hi, redis.call('ZCOUNT', key, '-inf', ARGV[6])) end
local lo = 0
if ARGV[5] ~= '' then lo = redis.call('ZCOUNT', key, '-inf', '(' .. ARGV[5]) end
local out = {0, '', ''}
local found = 0
local names = {}
local pos = hi
while pos > lo and found < limit and budget > 0 do
  local n = math.min(pos - lo, budget, 200)
  local ids = redis.call('ZRANGE', key, pos - n, pos - 1, 'WITHSCORES')
  for j = #ids - 1, 1, -2 do
    local rid = ids[j]
    pos = pos - 1
    budget = budget - 1
    out[2] = ids[j + 1]
    out[3] = rid
    local rk = base .. ':r:' .. rid
    local r = redis.call('HMGET', rk, 'status', 'task_id', 'retried_by')
    local keep = r[1] ~= false
    if keep and status ~= '' then keep = r[1] == status end
    if keep and task_id ~= '' then keep = r[2] == task_id end
    if keep and replayed == '0' then keep = not r[3] end
    if keep and replayed == '1' then keep = r[3] ~= false end
    if keep and prefix ~= '' then
      local name = names[r[2]]
      if name == nil then
        name = redis.call('HGET', base .. ':t:' .. r[2], 'name')
        names[r[2]] = name
      end
      keep = name ~= false and string.sub(name, 1, #prefix) == prefix
    end
    if keep then
      out[#out + 1] = redis.call('HGETALL', rk)
      found = found + 1
    end
    if found >= limit then break end
  end
end
if pos <= lo then out[1] = 1 end
return out
