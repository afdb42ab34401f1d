-- The outbox of one slot: runs still PENDING or RUNNING, in (scheduled_time, run_id) order after
-- a cursor, each with its task (runs whose task is gone are skipped).
-- KEYS[1]: the slot's key base.
-- ARGV: after_time ('' = from the start), after_run_id, limit, up_to ('' = no bound: runs
--       scheduled later are not returned, and the read ends at the first of them)
-- Returns {exhausted (0|1), last_time, last_run_id, {run, task}, {run, task}, ...} (flat hashes).
--@include _lib.lua
local base = KEYS[1]
local open = base .. ':open'
local limit = tonumber(ARGV[3])
local start = start_after(open, ARGV[1], ARGV[2])
local up_to = nil
if ARGV[4] and ARGV[4] ~= '' then up_to = tonumber(ARGV[4]) end
local rows = redis.call('ZRANGE', open, start, start + limit - 1, 'WITHSCORES')
local out = {0, '', ''}
-- Tasks read by this call (a periodic task has several runs open after an outage).
local tasks = {}
-- The value of a field in a flat HGETALL answer.
local function field(flat, name)
  for j = 1, #flat, 2 do
    if flat[j] == name then return flat[j + 1] end
  end
  return nil
end
for i = 1, #rows, 2 do
  if up_to and tonumber(rows[i + 1]) > up_to then
    out[1] = 1
    return out
  end
  local run_id = rows[i]
  out[2] = rows[i + 1]
  out[3] = run_id
  local r = redis.call('HGETALL', base .. ':r:' .. run_id)
  local task_id = field(r, 'task_id')
  if task_id then
    local t = tasks[task_id]
    if not t then
      t = redis.call('HGETALL', base .. ':t:' .. task_id)
      tasks[task_id] = t
    end
    if #t > 0 then out[#out + 1] = {r, t} end
  end
end
if #rows < 2 * limit then out[1] = 1 end
return out
