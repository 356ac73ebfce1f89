-- Join an event's waiting room. Idempotent: the score is a per-event sequence
-- number taken here, and ZADD NX never moves someone already in.
-- Before the sale opens (and until the event's one draw is made) people join
-- the pre-queue, whose order is drawn at the opening (app/draw.py); from the
-- opening on they join the queue behind the drawn, in arrival order.
-- KEYS[1] config  KEYS[2] queue  KEYS[3] sequence  KEYS[4] heartbeat  KEYS[5] active
-- KEYS[6] tick  KEYS[7] pre-queue  KEYS[8] the people staying for returned seats
-- KEYS[9] the people told it sold out (zset)
-- ARGV[1] user id  ARGV[2] "1" when the caller has passed the event's bot check
-- Returns {"waiting", ...} or {"prequeue", ...} (see _prelude.lua)
--      or {"admitted"} (already in the active set), {"closed"}, {"sold_out"}
--      (every seat booked or blocked: nobody is queued for nothing; someone
--      already in line gets poll's sold-out answer, _prelude.lua),
--      {"prequeue_not_open", ms until it opens},
--      {"bot_check", cut-off ms} (bot protection on, a newcomer without the
--      check: app/bots.py decides, and the caller joins again with ARGV[2]) or
--      {"no_event"} (no config in Redis: the caller reloads it and retries).
local cfg = queue_config(KEYS[1])
if not cfg then return {'no_event'} end
local now = now_ms()

local active_until = tonumber(redis.call('ZSCORE', KEYS[5], ARGV[1]))
if active_until and active_until > now then return {'admitted'} end
if cfg.state == 'closed' then return {'closed'} end
local keys_ = {queue = KEYS[2], heartbeat = KEYS[4], tick = KEYS[6], prequeue = KEYS[7],
               stay = KEYS[8], told = KEYS[9]}
if cfg.sold_out then return sold_out_answer(ARGV[1], keys_, cfg, now) end
if redis.call('ZSCORE', KEYS[7], ARGV[1]) then return prequeue_answer(ARGV[1], keys_, cfg, now) end
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  local prequeue = now < cfg.opens_at_ms and not cfg.drawn
  if prequeue and now < cfg.prequeue_ms then return {'prequeue_not_open', cfg.prequeue_ms - now} end
  -- Someone already in line joins again freely; only newcomers are checked.
  local bot_cutoff = tonumber(redis.call('HGET', KEYS[1], 'bot_cutoff_ms') or '0')
  if bot_cutoff > 0 and ARGV[2] ~= '1' then return {'bot_check', bot_cutoff} end
  if prequeue then
    redis.call('ZADD', KEYS[7], 'NX', redis.call('INCR', KEYS[3]), ARGV[1])
    return prequeue_answer(ARGV[1], keys_, cfg, now)
  end
  redis.call('ZADD', KEYS[2], 'NX', redis.call('INCR', KEYS[3]), ARGV[1])
end
return waiting_answer(redis.call('ZRANK', KEYS[2], ARGV[1]), ARGV[1], keys_, cfg, now)
