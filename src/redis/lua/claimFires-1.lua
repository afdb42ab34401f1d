-- Claims fires committed ahead of their due time, shortly before that time (the owner delivers
-- only those claimed, at their time).
-- A claim and an undo (uncommitHeld) are atomic against each other: exactly one of them wins.
-- For each fire: the fencing token must be the slot's current epoch AND the lease must still be
-- held with that epoch (as for commitFires). Then: if the run is gone it was undone (the task
-- changed or was deleted before its due time): 'undone'. Otherwise the task's held marker is
-- cleared if it points at this run (the fire can no longer be undone): 'claimed'. Claiming again
-- answers 'claimed' (a lost reply is retried safely).
-- A claimed run records its claimer (claimed_by): while that node is live, another node taking the
-- slot over leaves the run to it (it is delivering it), as it does a run marked RUNNING.
-- KEYS[1]: the slot's key base.
-- ARGV[1]: a JSON array of strings: token, node, then task_id, run_id per fire (see commitFires).
-- Returns one of 'claimed' | 'undone' | 'fenced' per fire, in order.
--@include _lib.lua
local base = KEYS[1]
local A = cjson.decode(ARGV[1])
local token, node = A[1], A[2]
local lease_epoch, epoch = fence_of(base)
local fenced = lease_epoch == nil or lease_epoch ~= token or epoch ~= token
local out = {}
for i = 3, #A, 2 do
  local id, run_id = A[i], A[i + 1]
  local tk = base .. ':t:' .. id
  if fenced then
    out[#out + 1] = 'fenced'
  elseif redis.call('HGET', tk, 'h_run') == run_id then
    -- The task's held marker points at this run, so the run exists (an undo removes both at once).
    redis.call('HDEL', tk, 'h_run', 'h_tick', 'h_last')
    redis.call('HSET', base .. ':r:' .. run_id, 'claimed_by', node)
    out[#out + 1] = 'claimed'
  elseif redis.call('EXISTS', base .. ':r:' .. run_id) == 0 then
    out[#out + 1] = 'undone'
  else
    redis.call('HSET', base .. ':r:' .. run_id, 'claimed_by', node)
    out[#out + 1] = 'claimed'
  end
end
return out
