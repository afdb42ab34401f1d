-- Active tasks of one slot due up to a time, in (next_fire_time, id) order, after a cursor.
-- KEYS[1]: the slot's key base.
-- ARGV: after_time ('' = from the start), after_id, up_to, limit
-- Returns {exhausted (0|1), last_time, last_id, task, task, ...}: each task a flat field/value
-- list; last_* is the last due-set entry read ('' when none), the cursor of the next call.
--@include _lib.lua
local base = KEYS[1]
local rows, up_to, limit = due_page(base, ARGV)
local out = {0, '', ''}
for i = 1, #rows, 2 do
  local id, score = rows[i], rows[i + 1]
  if tonumber(score) > up_to then
    out[1] = 1
    return out
  end
  out[2] = score
  out[3] = id
  local t = redis.call('HGETALL', base .. ':t:' .. id)
  if #t > 0 then out[#out + 1] = t end
end
if #rows < 2 * limit then out[1] = 1 end
return out
