-- Deletes a task, its runs and its index entries.
-- KEYS[1]: the slot's key base. ARGV: id.
-- Returns the deleted task's hash (flat field/value list), or an empty list when unknown.
--@include _lib.lua
local base = KEYS[1]
local id = ARGV[1]
local tk = base .. ':t:' .. id
local t = redis.call('HGETALL', tk)
if #t == 0 then return t end
local state = redis.call('HGET', tk, 'state')
redis.call('DEL', tk)
redis.call('ZREM', base .. ':ids', id)
redis.call('ZREM', base .. ':st:' .. state, id)
redis.call('ZREM', base .. ':due', id)
local runs = redis.call('ZRANGE', base .. ':runs:' .. id, 0, -1)
for _, rid in ipairs(runs) do drop_run(base, rid) end
redis.call('DEL', base .. ':runs:' .. id)
return t
