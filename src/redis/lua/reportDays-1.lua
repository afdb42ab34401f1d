-- The daily report's tallies of one slot (B:rep:<day>, written by report_flush in _lib.lua).
-- KEYS[1]: the slot's key base.
-- ARGV: first day, last day (days since the epoch, UTC)
-- Returns {day, {field, count, ...}, day, {...}, ...} for the days with tallies.
local base = KEYS[1]
local out = {}
for d = tonumber(ARGV[1]), tonumber(ARGV[2]) do
  local day = string.format('%d', d)
  local h = redis.call('HGETALL', base .. ':rep:' .. day)
  if #h > 0 then
    out[#out + 1] = day
    out[#out + 1] = h
  end
end
return out
