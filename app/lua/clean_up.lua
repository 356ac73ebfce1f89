-- Remove one batch of ghosts: people in the queue who have not polled since
-- the cutoff. Small batches keep every call short (no Redis stall, no memory
-- spike) however many ghosts there are.
-- KEYS[1] heartbeat  KEYS[2] queue  KEYS[3] tick (counts removals for the staff page)
-- ARGV[1] heartbeat timeout, ms  ARGV[2] batch size
-- Returns the removed user ids.
local cutoff = now_ms() - tonumber(ARGV[1])
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff, 'LIMIT', 0, tonumber(ARGV[2]))
for i = 1, #stale, 500 do  -- unpack() has a stack limit
  local chunk = {unpack(stale, i, math.min(i + 499, #stale))}
  redis.call('ZREM', KEYS[1], unpack(chunk))
  redis.call('ZREM', KEYS[2], unpack(chunk))
end
if #stale > 0 then redis.call('HINCRBY', KEYS[3], 'cleanup_removed', #stale) end
return stale
