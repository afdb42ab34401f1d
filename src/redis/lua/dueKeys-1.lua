-- The keys (next_fire_time, id) of one slot's active tasks due up to a time, in (next_fire_time,
-- id) order after a cursor: dueTasks without reading the tasks (the scheduler's safety rescan
-- only needs to know which are loaded already).
-- KEYS[1]: the slot's key base.
-- ARGV: after_time ('' = from the start), after_id, up_to, limit
-- Returns {exhausted (0|1), id, time, id, time, ...}.
--@include _lib.lua
local base = KEYS[1]
local rows, up_to, limit = due_page(base, ARGV)
local out = {0}
for i = 1, #rows, 2 do
  if tonumber(rows[i + 1]) > up_to then
    out[1] = 1
    return out
  end
  out[#out + 1] = rows[i]
  out[#out + 1] = rows[i + 1]
end
if #rows < 2 * limit then out[1] = 1 end
return out
