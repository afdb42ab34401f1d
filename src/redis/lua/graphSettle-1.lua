-- Settles a reservation (graphReserve) after its task write: drops it and records what the write
-- stored. A write that did not happen records nothing; a task write's rev (g_rev in the task hash,
-- raised by each graph write) makes the newest write win when settles arrive out of order.
-- KEYS[1]: {<prefix>}:graph (see _graph.lua).
-- ARGV: id, token, rev ('' = not written; '+' = a new task: its children join the recorded ones),
--       children (JSON array), reservation lifetime (ms)
-- Returns 1.
--@include _graph.lua
local key = KEYS[1]
local id, token, rev = ARGV[1], ARGV[2], ARGV[3]
local node = load_node(key, id)
node.p[token] = nil
fold_expired(node, now_ms(), tonumber(ARGV[5]))
if rev == '+' then
  local set = {}
  for _, c in ipairs(node.c) do set[c] = true end
  for _, c in ipairs(cjson.decode(ARGV[4])) do
    if not set[c] then
      set[c] = true
      node.c[#node.c + 1] = c
    end
  end
elseif rev ~= '' and tonumber(rev) > tonumber(node.r) then
  node.r = tonumber(rev)
  node.c = cjson.decode(ARGV[4])
end
save_node(key, id, node)
return 1
