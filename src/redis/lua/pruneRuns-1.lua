-- Deletes finished run records of one slot, a bounded amount per call.
-- Phase 'age': finished runs created before `older_than`. Phase 'id:<task_id>': per task, the
-- finished runs scheduled before its max_per_task-th newest run (tasks in id order after <task_id>).
-- KEYS[1]: the slot's key base.
-- ARGV: older_than, max_per_task (0 = no limit), cursor ('age' or 'id:<last task id>'), budget
-- Returns {deleted, next_cursor ('' = done)}.
--@include _lib.lua
local base = KEYS[1]
local older_than, max_per_task, cursor, budget = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local deleted = 0
if cursor == 'age' then
  local old = redis.call('ZRANGEBYSCORE', base .. ':done', '-inf', '(' .. older_than, 'LIMIT', 0, budget)
  for _, rid in ipairs(old) do
    drop_run(base, rid)
    deleted = deleted + 1
  end
  if #old == budget then return {deleted, 'age'} end
  if max_per_task <= 0 then return {deleted, ''} end
  cursor = 'id:'
end
local after = string.sub(cursor, 4)
local from = '-'
if after ~= '' then from = '(' .. after end
local ids = redis.call('ZRANGEBYLEX', base .. ':ids', from, '+', 'LIMIT', 0, budget)
for _, id in ipairs(ids) do
  local key = base .. ':runs:' .. id
  local n = redis.call('ZCARD', key)
  if n > max_per_task then
    -- runs scheduled before the max_per_task-th newest (ties with it are kept)
    local cut = redis.call('ZRANGE', key, n - max_per_task, n - max_per_task, 'WITHSCORES')[2]
    local excess = redis.call('ZRANGEBYSCORE', key, '-inf', '(' .. cut)
    for _, rid in ipairs(excess) do
      local st = redis.call('HGET', base .. ':r:' .. rid, 'status')
      if st ~= 'PENDING' and st ~= 'RUNNING' then
        drop_run(base, rid)
        deleted = deleted + 1
      end
    end
  end
end
if #ids < budget then return {deleted, ''} end
return {deleted, 'id:' .. ids[#ids]}
