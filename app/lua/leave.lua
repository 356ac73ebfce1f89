-- Leave the waiting room or the pre-queue, or give back an active slot (and
-- its token). Seats the person holds go back on sale at once: they could
-- not pay for them any more. A payment already under way is left to finish.
-- KEYS[1] queue  KEYS[2] heartbeat  KEYS[3] active  KEYS[4] entrance record
-- KEYS[5] pre-queue  KEYS[6] seats  KEYS[7] the person's holds (set)
-- KEYS[8] the people staying for returned seats (set)
-- KEYS[9] the people told it sold out (zset)
-- ARGV[1] user id
-- Returns 1 if the person was waiting or active, else 0.
local removed = redis.call('ZREM', KEYS[1], ARGV[1]) + redis.call('ZREM', KEYS[3], ARGV[1])
                + redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[8], ARGV[1])
redis.call('ZREM', KEYS[9], ARGV[1])
redis.call('DEL', KEYS[4])
for _, seat in ipairs(redis.call('SMEMBERS', KEYS[7])) do
  local s = seat_fields(redis.call('HGET', KEYS[6], seat))
  if s[1] == 'held' and s[2] == ARGV[1] then
    redis.call('HDEL', KEYS[6], seat)
    redis.call('SREM', KEYS[7], seat)
  end
end
return removed > 0 and 1 or 0
