-- Poll the waiting room: heartbeat, rank, total and the admitted check in one
-- call. Membership of the active set is the single truth: the poll that finds
-- the person active records their admission token id (once per window).
-- KEYS[1] config  KEYS[2] queue  KEYS[3] heartbeat  KEYS[4] active  KEYS[5] tick
-- KEYS[6] this person's entrance record
-- ARGV[1] user id
-- Returns {"waiting", ...} (see waiting_answer in _prelude.lua)
--      or {"admitted", active_until_ms, token id}
--      or {"sold_out"} (every seat booked or blocked: stop waiting; people
--      already admitted still get "admitted")
--      or {"not_in_queue"} or {"no_event"} (no config: reload and retry).
local cfg = redis.call('HMGET', KEYS[1], 'state', 'opens_at_ms', 'sold_out')
if not cfg[1] then return {'no_event'} end
local now = now_ms()

local active_until = redis.call('ZSCORE', KEYS[4], ARGV[1])
if active_until and tonumber(active_until) > now then
  local record = redis.call('HMGET', KEYS[6], 'jti', 'until')
  if record[2] ~= active_until then
    -- A new window (or none recorded yet): a new token id, gone when it ends.
    -- It needs to be unique, not secret: only a token signed with the app's
    -- key carries it.
    record[1] = redis.sha1hex(ARGV[1] .. ':' .. active_until .. ':' .. now)
    redis.call('DEL', KEYS[6])
    redis.call('HSET', KEYS[6], 'jti', record[1], 'until', active_until)
    redis.call('PEXPIREAT', KEYS[6], active_until)
  end
  return {'admitted', active_until, record[1]}
end

if cfg[3] == '1' then return {'sold_out'} end

local rank = redis.call('ZRANK', KEYS[2], ARGV[1])
if not rank then return {'not_in_queue'} end
redis.call('ZADD', KEYS[3], now, ARGV[1])
return waiting_answer(rank, KEYS[2], KEYS[5], admitting(cfg[1], cfg[2], now))
