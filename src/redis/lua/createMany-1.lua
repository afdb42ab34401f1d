-- Creates tasks in one slot in one call (batch create; tasks without an idempotency key or child
-- tasks, which go through create). Same writes as create, merged: one ZADD per sorted set.
-- KEYS[1]: the slot's key base "{<prefix>:<slot>}"
-- ARGV[1]: JSON array of tasks, each an array of strings: id, state, next_fire_time ('' = none),
--          update_time, then hash field/value pairs
-- Returns an array: per task 1 (created) or 0 (the id exists).
local base = KEYS[1]
local tasks = cjson.decode(ARGV[1])
local out = {}
local sets = {}
local function add(key, score, id)
  local s = sets[key]
  if s == nil then
    s = {}
    sets[key] = s
  end
  s[#s + 1] = score
  s[#s + 1] = id
end
for i, t in ipairs(tasks) do
  local id, state, nxt, updated = t[1], t[2], t[3], t[4]
  local tk = base .. ':t:' .. id
  if redis.call('EXISTS', tk) == 1 then
    out[i] = 0
  else
    redis.call('HSET', tk, unpack(t, 5))
    add(base .. ':ids', 0, id)
    add(base .. ':st:' .. state, 0, id)
    if state == 'active' and nxt ~= '' then add(base .. ':due', nxt, id) end
    if state == 'completed' then add(base .. ':completed', updated, id) end
    out[i] = 1
  end
end
-- In chunks: unpack() puts every value on Lua's stack.
for key, s in pairs(sets) do
  for from = 1, #s, 1000 do
    redis.call('ZADD', key, unpack(s, from, math.min(from + 999, #s)))
  end
end
return out
