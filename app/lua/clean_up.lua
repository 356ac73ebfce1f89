-- Remove one batch of stale heartbeat entries, and with them the ghosts:
-- people waiting (in the queue or the pre-queue) who are more than the
-- timeout past the latest time they were due to poll again (join and poll
-- score the heartbeat with it). Small batches keep every call short (no
-- Redis stall, no memory spike) however many ghosts there are. The entries
-- of admitted people (admit.lua leaves them) go too, but they are in no
-- queue, so they are not counted as ghosts; nothing else of anyone's is
-- touched (the active set is not among these keys) but a ghost's place kept
-- after a sell-out (stay.lua, _prelude.lua). Someone who joins again
-- gets a fresh heartbeat from join.lua, so an old entry never removes a
-- person who is waiting now.
-- KEYS[1] heartbeat  KEYS[2] queue  KEYS[3] tick (counts removals for the staff page)
-- KEYS[4] pre-queue  KEYS[5] the people staying for returned seats (set)
-- KEYS[6] the people told it sold out (zset)
-- ARGV[1] heartbeat timeout, ms  ARGV[2] batch size
-- Returns {stale entries removed (less than the batch size: none are left),
--          people removed from the queue}.
local cutoff = now_ms() - tonumber(ARGV[1])
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff, 'LIMIT', 0, tonumber(ARGV[2]))
local removed = 0
for i = 1, #stale, 500 do  -- unpack() has a stack limit
  local last = math.min(i + 499, #stale)
  redis.call('ZREM', KEYS[1], unpack(stale, i, last))
  removed = removed + redis.call('ZREM', KEYS[2], unpack(stale, i, last))
                    + redis.call('ZREM', KEYS[4], unpack(stale, i, last))
  redis.call('SREM', KEYS[5], unpack(stale, i, last))
  redis.call('ZREM', KEYS[6], unpack(stale, i, last))
end
if removed > 0 then redis.call('HINCRBY', KEYS[3], 'cleanup_removed', removed) end
return {#stale, removed}
