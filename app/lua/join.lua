-- Join an event's waiting room. Idempotent: the score is a per-event sequence
-- number taken here, and ZADD NX never moves someone already in the queue.
-- KEYS[1] config  KEYS[2] queue  KEYS[3] sequence  KEYS[4] heartbeat  KEYS[5] active
-- KEYS[6] tick
-- ARGV[1] user id
-- Returns {"waiting", ...} (see waiting_answer in _prelude.lua)
--      or {"admitted"} (already in the active set), {"closed"}, {"sold_out"}
--      (every seat booked or blocked: nobody is queued for nothing) or
--      {"no_event"} (no config in Redis: the caller reloads it and retries).
local cfg = redis.call('HMGET', KEYS[1], 'state', 'opens_at_ms', 'sold_out')
if not cfg[1] then return {'no_event'} end
local now = now_ms()

local active_until = tonumber(redis.call('ZSCORE', KEYS[5], ARGV[1]))
if active_until and active_until > now then return {'admitted'} end
if cfg[1] == 'closed' then return {'closed'} end
if cfg[3] == '1' then return {'sold_out'} end

if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('ZADD', KEYS[2], 'NX', redis.call('INCR', KEYS[3]), ARGV[1])
end
redis.call('ZADD', KEYS[4], now, ARGV[1])

return waiting_answer(redis.call('ZRANK', KEYS[2], ARGV[1]), KEYS[2], KEYS[6],
                      admitting(cfg[1], cfg[2], now))
