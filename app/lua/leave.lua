-- Leave the waiting room or the pre-queue, or give back an active slot (and
-- its token).
-- KEYS[1] queue  KEYS[2] heartbeat  KEYS[3] active  KEYS[4] entrance record
-- KEYS[5] pre-queue
-- ARGV[1] user id
-- Returns 1 if the person was waiting or active, else 0.
local removed = redis.call('ZREM', KEYS[1], ARGV[1]) + redis.call('ZREM', KEYS[3], ARGV[1])
                + redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[4])
return removed > 0 and 1 or 0
