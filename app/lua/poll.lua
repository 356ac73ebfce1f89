-- Poll the waiting room: heartbeat, place and the admitted check in one
-- call. Membership of the active set is the single truth: the poll that finds
-- the person active records their admission token id (once per window).
-- That first poll is when the person is told, and their window starts then:
-- the slot, held since the tick that admitted them, is extended to a full
-- window from now. Someone who never looks again still leaves at the tick's
-- time, so the slots in use never exceed the cap.
-- KEYS[1] config  KEYS[2] queue  KEYS[3] heartbeat  KEYS[4] active  KEYS[5] tick
-- KEYS[6] this person's entrance record  KEYS[7] pre-queue
-- KEYS[8] the people staying for returned seats (set)
-- KEYS[9] the people told it sold out (zset)
-- ARGV[1] user id
-- Returns {"waiting", ...} or {"prequeue", ...} (see _prelude.lua)
--      or {"admitted", active_until_ms, token id}
--      or {"sold_out"} / {"sold_out", "may_stay"} / {"staying", ...} (every
--      seat booked or blocked: stop waiting, or stay in line for seats that
--      come back, see _prelude.lua; people already admitted still get "admitted")
--      or {"not_in_queue"} or {"no_event"} (no config: reload and retry).
local cfg = queue_config(KEYS[1])
if not cfg then return {'no_event'} end
local now = now_ms()

local active_until = redis.call('ZSCORE', KEYS[4], ARGV[1])
if active_until and tonumber(active_until) > now then
  local record = redis.call('HMGET', KEYS[6], 'jti', 'until')
  if record[2] ~= active_until then
    -- Told for the first time in this window: a full window from now, and
    -- a new token id, gone when the window ends. The id needs to be unique,
    -- not secret: only a token signed with the app's key carries it.
    local told_until = string.format('%d', now + cfg.active_ttl_ms)
    if tonumber(told_until) > tonumber(active_until) then
      redis.call('ZADD', KEYS[4], 'XX', told_until, ARGV[1])
      active_until = told_until
    end
    record[1] = redis.sha1hex(ARGV[1] .. ':' .. active_until .. ':' .. now)
    redis.call('DEL', KEYS[6])
    redis.call('HSET', KEYS[6], 'jti', record[1], 'until', active_until)
    redis.call('PEXPIREAT', KEYS[6], active_until)
  end
  return {'admitted', active_until, record[1]}
end

local keys_ = {queue = KEYS[2], heartbeat = KEYS[3], tick = KEYS[5], prequeue = KEYS[7],
               stay = KEYS[8], told = KEYS[9]}
if cfg.sold_out then return sold_out_answer(ARGV[1], keys_, cfg, now) end

local rank = redis.call('ZRANK', KEYS[2], ARGV[1])
if rank then return waiting_answer(rank, ARGV[1], keys_, cfg, now) end
if redis.call('ZSCORE', KEYS[7], ARGV[1]) then return prequeue_answer(ARGV[1], keys_, cfg, now) end
return {'not_in_queue'}
