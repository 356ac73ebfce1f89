-- Stay in line for returned seats: someone in the queue of a sold-out event
-- (or told it sold out, _prelude.lua) keeps their place and goes on polling,
-- slowly: nothing moves until seats come back. When a cancellation or a
-- staff unblock puts seats back on sale, admission resumes and takes them in
-- their order (admit.lua). Idempotent.
-- KEYS[1] config  KEYS[2] queue  KEYS[3] heartbeat  KEYS[4] the people staying (set)
-- KEYS[5] the people told it sold out (zset: their place in the queue)
-- ARGV[1] user id
-- Returns {"staying", ...} (see _prelude.lua), {"on_sale"} (not sold out, or
-- no longer: the caller polls as usual), {"not_in_queue"} or {"no_event"}.
local cfg = queue_config(KEYS[1])
if not cfg then return {'no_event'} end
local place = redis.call('ZSCORE', KEYS[5], ARGV[1])
if place and not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('ZADD', KEYS[2], place, ARGV[1])  -- back to the place they were told at
end
redis.call('ZREM', KEYS[5], ARGV[1])
local rank = redis.call('ZRANK', KEYS[2], ARGV[1])
if not rank then return {'not_in_queue'} end
if not cfg.sold_out then return {'on_sale'} end
redis.call('SADD', KEYS[4], ARGV[1])
return staying_answer(rank, ARGV[1], {heartbeat = KEYS[3], stay = KEYS[4]}, cfg, now_ms())
