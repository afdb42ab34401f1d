-- Commits a batch of fires of one slot atomically (DESIGN.md, correctness rule 1).
-- For each fire: the fencing token must be the slot's current epoch AND the lease must still be
-- held with that epoch; the task must be active with next_fire_time = the expected tick
-- (compare-and-set). Then: advance next_fire_time (or complete a one-shot), bump run_count
-- (PENDING only), write the run record, index it (task history, outbox or finished set).
-- KEYS[1]: the slot's key base.
-- A PENDING fire committed ahead of its due time (ahead = '1') stays undoable until the owner claims
-- it at its due time (claimFires): the task hash keeps h_run (the run), h_tick (the tick) and
-- h_last (last_fire_time before the commit, '' = null) for uncommitHeld. Any other commit clears
-- them (an older held fire is then no longer undoable; it still goes out).
-- ARGV[1]: a JSON array of strings, 11 per fire: token, task_id, expected, next ('' = none:
--       complete), now, run_id, node, status (PENDING|SKIPPED|MISSED), error ('' = null, else
--       marker + text), ahead ('1'|''), retry ('1'|''). One argument instead of 11 per fire: the
--       client encodes a batch with one JSON.stringify, and Redis decodes it in C (cjson).
-- A retry ('1': an earlier call with this fire got no usable answer, e.g. its WAIT fell short)
-- that finds exactly this commit already applied (the task at last_fire_time = expected and next
-- = next, the run with the same token, node, status and tick) answers 'committed' again: the
-- caller had not acted on it. The run's token is written again, so a WAIT after this call covers
-- the earlier commit even on a new connection. A held fire (h_run) that is no longer ahead is
-- made a plain commit, as a first commit at this time would be.
-- Returns one of 'committed' | 'fenced' | 'conflict' per fire, in order.
-- Writes are merged (one HSET and at most one HDEL per hash), the slot's sorted sets (due, state,
-- completed, all, open, done) are written once per batch (zb_*), and the slot's status counters are
-- bumped once per batch. The fence (lease and epoch) is read once per batch.
--@include _lib.lua
local base = KEYS[1]
local A = cjson.decode(ARGV[1])
local slot = string.match(base, ':(%d+)}$')
local lease_epoch, epoch = fence_of(base)
local out = {}
local counts = {}
local tally = {}
local zb = {}
-- This exact commit applied already (see retry above)?
local function applied(cur, rk, token, expected, nxt, node, status)
  if cur[3] ~= expected then return false end
  if nxt == '' then
    if cur[1] ~= 'completed' then return false end
  elseif cur[1] ~= 'active' or cur[2] ~= nxt then
    return false
  end
  local run = redis.call('HMGET', rk, 'tok', 'node', 'status', 'scheduled_time')
  return run[1] == token and run[2] == node and run[3] == status and run[4] == expected
end
for i = 1, #A, 11 do
  local token = A[i]
  if lease_epoch == nil or lease_epoch ~= token or epoch ~= token then
    out[#out + 1] = 'fenced'
  else
    local id, expected, nxt, now = A[i + 1], A[i + 2], A[i + 3], A[i + 4]
    local run_id, node, status, err = A[i + 5], A[i + 6], A[i + 7], opt(A[i + 8])
    local tk = base .. ':t:' .. id
    local cur = redis.call('HMGET', tk, 'state', 'next_fire_time', 'last_fire_time', 'run_count', 'h_run')
    if cur[1] ~= 'active' or cur[2] ~= expected then
      local rk = base .. ':r:' .. run_id
      if A[i + 10] == '1' and applied(cur, rk, token, expected, nxt, node, status) then
        redis.call('HSET', rk, 'tok', token)
        if cur[5] == run_id and A[i + 9] ~= '1' then redis.call('HDEL', tk, 'h_run', 'h_tick', 'h_last') end
        out[#out + 1] = 'committed'
      else
        out[#out + 1] = 'conflict'
      end
    else
      local set = {'last_fire_time', expected, 'update_time', now}
      local del = {}
      if nxt == '' then
        del[#del + 1] = 'next_fire_time'
        put(set, 'state', 'completed')
        zb_rem(zb, base .. ':due', id)
        zb_rem(zb, base .. ':st:active', id)
        zb_add(zb, base .. ':st:completed', 0, id)
        zb_add(zb, base .. ':completed', now, id)
      else
        put(set, 'next_fire_time', nxt)
        zb_add(zb, base .. ':due', nxt, id)
      end
      if status == 'PENDING' and A[i + 9] == '1' then
        put(set, 'h_run', run_id)
        put(set, 'h_tick', expected)
        put(set, 'h_last', cur[3] or '')
      elseif cur[5] then
        del[#del + 1] = 'h_run'
        del[#del + 1] = 'h_tick'
        del[#del + 1] = 'h_last'
      end
      if status == 'PENDING' then
        put(set, 'run_count', string.format('%d', (tonumber(cur[4]) or 0) + 1))
      else
        put(set, 'last_status', status)
      end
      if #del > 0 then redis.call('HDEL', tk, unpack(del)) end
      redis.call('HSET', tk, unpack(set))
      local rk = base .. ':r:' .. run_id
      if redis.call('EXISTS', rk) == 0 then
        local run = {'run_id', run_id, 'task_id', id, 'slot', slot, 'node', node, 'scheduled_time', expected,
          'attempts', 0, 'status', status, 'created', now, 'tok', token}
        put(run, 'error', err)
        if status ~= 'PENDING' then
          put(run, 'start_time', now)
          put(run, 'end_time', now)
        end
        redis.call('HSET', rk, unpack(run))
        redis.call('ZADD', base .. ':runs:' .. id, expected, run_id)
        zb_add(zb, base .. ':all', expected, run_id)
        if status == 'PENDING' then
          zb_add(zb, base .. ':open', expected, run_id)
        else
          zb_add(zb, base .. ':done', now, run_id)
          report_tally(tally, status, expected, nil)
        end
        counts[status] = (counts[status] or 0) + 1
      end
      out[#out + 1] = 'committed'
    end
  end
end
zb_flush(zb)
for status, n in pairs(counts) do redis.call('HINCRBY', base .. ':runstat', status, n) end
report_flush(base, tally)
return out
