-- Deletes a task, its runs and its index entries.
-- KEYS[1]: the slot's key base. ARGV: id.
-- Returns the deleted task's hash (flat field/value list), or an empty list when unknown.
--@include _lib.lua
return drop_task(KEYS[1], ARGV[1])
