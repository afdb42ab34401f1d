-- A task's runs, newest first ((scheduled_time, run_id) descending), before an exclusive cursor.
-- KEYS[1]: the slot's key base.
-- ARGV: task_id, before_time ('' = from the newest), before_run_id, limit
-- Returns a list of runs (flat hashes).
--@include _lib.lua
local base = KEYS[1]
local key = base .. ':runs:' .. ARGV[1]
local limit = tonumber(ARGV[4])
local stop
if ARGV[2] == '' then
  stop = redis.call('ZCARD', key)
else
  stop = count_before(key, ARGV[2], ARGV[3])
end
local out = {}
if stop == 0 or limit <= 0 then return out end
local first = math.max(0, stop - limit)
local ids = redis.call('ZRANGE', key, first, stop - 1)
for i = #ids, 1, -1 do
  local r = redis.call('HGETALL', base .. ':r:' .. ids[i])
  if #r > 0 then out[#out + 1] = r end
end
return out
