-- Tasks of one slot ordered by id after a cursor, filtered by state and name prefix.
-- KEYS[1]: the slot's key base.
-- ARGV: state ('' = any), after_id ('' = from the start), limit, name_prefix ('' = any),
--       tag ('' = any), last_status ('' = any)
-- Returns {exhausted (0|1), last_id_read, task, task, ...} (flat hashes). The name filter runs
-- here, so fewer than `limit` tasks may come back while exhausted is 0: continue from last_id_read.
--@include _lib.lua
local base = KEYS[1]
local key = base .. ':ids'
if ARGV[1] ~= '' then key = base .. ':st:' .. ARGV[1] end
local limit = tonumber(ARGV[3])
local from = '-'
if ARGV[2] ~= '' then from = '(' .. ARGV[2] end
local ids = redis.call('ZRANGEBYLEX', key, from, '+', 'LIMIT', 0, limit)
local prefix = ARGV[4]
local tag = ARGV[5] or ''
local last = ARGV[6] or ''
local out = {0, ''}
for _, id in ipairs(ids) do
  out[2] = id
  local tk = base .. ':t:' .. id
  local keep = true
  if prefix ~= '' then
    local name = redis.call('HGET', tk, 'name')
    keep = name ~= false and string.sub(name, 1, #prefix) == prefix
  end
  if keep and last ~= '' then keep = redis.call('HGET', tk, 'last_status') == last end
  if keep and tag ~= '' then
    local tags = redis.call('HGET', tk, 'j:tags')
    keep = false
    if tags and tags ~= 'null' then
      for _, x in ipairs(cjson.decode(tags)) do
        if x == tag then
          keep = true
          break
        end
      end
    end
  end
  if keep then
    local t = redis.call('HGETALL', tk)
    if #t > 0 then out[#out + 1] = t end
  end
end
if #ids < limit then out[1] = 1 end
return out
