-- The children (on_success) of a slot's tasks, for building the child graph of a store written
-- before the graph existed (RedisChildGraph). Pages by id like listTasks.
-- KEYS[1]: the slot's key base. ARGV: after_id ('' = from the start), limit
-- Returns {exhausted (0|1), last_id_read, id, children JSON, id, children JSON, ...} for the tasks
-- that have children.
local base = KEYS[1]
local limit = tonumber(ARGV[2])
local from = '-'
if ARGV[1] ~= '' then from = '(' .. ARGV[1] end
local ids = redis.call('ZRANGEBYLEX', base .. ':ids', from, '+', 'LIMIT', 0, limit)
local out = { 0, '' }
for _, id in ipairs(ids) do
  out[2] = id
  local c = redis.call('HGET', base .. ':t:' .. id, 'j:on_success')
  if c and c ~= 'null' and c ~= '[]' then
    out[#out + 1] = id
    out[#out + 1] = c
  end
end
if #ids < limit then out[1] = 1 end
return out
