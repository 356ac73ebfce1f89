-- One admission tick for one event: drop expired actives, then move up to
-- min(max_active - active, rate x time since the last tick) people from the
-- head of the queue into the active set. The tick time and the fractional
-- remainder live in Redis, so several workers or a late tick neither over-
-- nor under-admit. Settings come from the config hash (written from MySQL).
-- Admitted people's heartbeat entries are left for clean_up.lua (removing
-- them here took a third to two thirds of the tick's time, the more the
-- heartbeats are spread): it counts only the people it takes out of the
-- queue, so their stale entries are never counted as ghosts.
-- Once the event has sold out (config `returns`), seats come back only a few
-- at a time (cancellations, staff unblocks): the active set is then held to
-- the seats on sale (config `on_sale`, MySQL's count) plus a margin, and the
-- people let in are the head of the queue, those who stayed (stay.lua).
-- It also samples waiting / active / admitted_total into a short list for the
-- staff chart, at most once per sample interval.
-- KEYS[1] config  KEYS[2] queue  KEYS[3] active  KEYS[4] tick
-- KEYS[5] samples (list of "ms waiting active admitted_total"; waiting counts
-- the pre-queue, as the staff numbers do)  KEYS[6] pre-queue
-- KEYS[7] the people staying for returned seats (set)
-- ARGV[1] most people to move in this call (keeps one call short)
-- ARGV[2] longest gap to catch up on, ms (a scheduler down for an hour
--         must not release an hour's worth at once)
-- ARGV[3] sample interval, ms  ARGV[4] samples kept
-- ARGV[5] after a sell-out, how many more people may be active than seats on sale
-- Returns {admitted, expired, active_now, status, waiting, poll budget,
-- active_ttl_ms, rate, poll scale} (the last five for app/waiting_room.py to
-- rescale the poll intervals), where status is "ok", "paused" (admission not
-- open, or before the sale opens), "draw" (the sale has opened and its draw
-- is not made yet: nobody is let in before it, app/draw.py), "sold_out"
-- (every seat booked or blocked: letting people in would be for nothing) or
-- "no_event".
local cfg = redis.call('HMGET', KEYS[1], 'state', 'max_active', 'rate', 'active_ttl_ms',
                       'opens_at_ms', 'sold_out', 'drawn', 'poll_budget', 'poll_scale',
                       'returns', 'on_sale')
-- (A hash without the poll budget predates it: written again, like a lost one.)
if not cfg[1] or not cfg[8] then return {0, 0, 0, 'no_event'} end
local now = now_ms()
local opens_at = tonumber(cfg[5]) or 0

local function answer(admitted, expired, status)
  return {admitted, expired, redis.call('ZCARD', KEYS[3]), status, redis.call('ZCARD', KEYS[2]),
          cfg[8], cfg[4], cfg[3], cfg[9] or '1'}
end

local function sample()
  local last = tonumber(redis.call('HGET', KEYS[4], 'sampled_ms') or '0')
  if now - last < tonumber(ARGV[3]) then return end
  redis.call('HSET', KEYS[4], 'sampled_ms', now)
  local waiting = redis.call('ZCARD', KEYS[2]) + redis.call('ZCARD', KEYS[6])
  redis.call('RPUSH', KEYS[5], now .. ' ' .. waiting .. ' '
             .. redis.call('ZCARD', KEYS[3]) .. ' '
             .. (redis.call('HGET', KEYS[4], 'admitted_total') or '0'))
  redis.call('LTRIM', KEYS[5], -tonumber(ARGV[4]), -1)
end

local expired = redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
-- For /metrics: when a tick last ran (admitting or not: a tick that stops
-- coming is the alert that matters) and how many windows ran out.
redis.call('HSET', KEYS[4], 'ticked_ms', now)
if expired > 0 then redis.call('HINCRBY', KEYS[4], 'expired_total', expired) end
local draw_due = opens_at > 0 and now >= opens_at and cfg[7] ~= '1'
if draw_due or not admitting(cfg[1], cfg[5], now) or cfg[6] == '1' then
  -- Restart the clock so reopening does not release the paused time at once;
  -- nobody is let in, so there is no observed rate (the first tick reseeds it).
  redis.call('HDEL', KEYS[4], 'last_ms', 'carry', 'rate_obs')
  sample()
  return answer(0, expired, cfg[6] == '1' and 'sold_out' or draw_due and 'draw' or 'paused')
end

local max_active, rate = tonumber(cfg[2]), tonumber(cfg[3])
local tick = redis.call('HMGET', KEYS[4], 'last_ms', 'carry', 'rate_obs')
local elapsed = 1000  -- the first tick admits one second's worth
if tick[1] then elapsed = math.max(0, math.min(now - tonumber(tick[1]), tonumber(ARGV[2]))) end
local allowance = (tonumber(tick[2]) or 0) + rate * elapsed / 1000
local want = math.floor(allowance)
local active = redis.call('ZCARD', KEYS[3])
local cap = max_active
if cfg[10] == '1' and cfg[11] then cap = math.min(cap, tonumber(cfg[11]) + tonumber(ARGV[5])) end
local room = math.max(0, cap - active)
local n = math.min(want, room, tonumber(ARGV[1]))

local admitted = 0
if n > 0 then
  -- The head of the queue without scores, then that range dropped by rank:
  -- half the cost of ZPOPMIN, which formats every score for its reply.
  local members = redis.call('ZRANGE', KEYS[2], 0, n - 1)
  admitted = #members
  if admitted > 0 then redis.call('ZREMRANGEBYRANK', KEYS[2], 0, admitted - 1) end
  -- (Only after a sell-out does anyone stay: the common tick pays one EXISTS.)
  if admitted > 0 and redis.call('EXISTS', KEYS[7]) == 1 then
    for first = 1, admitted, 1000 do
      redis.call('SREM', KEYS[7], unpack(members, first, math.min(first + 999, admitted)))
    end
  end
  -- One window end for all, as a string made once: Redis would convert a Lua
  -- number argument to a string again for every person.
  local active_until = string.format('%d', now + tonumber(cfg[4]))
  local batch = {}
  for i = 1, admitted do
    batch[2 * i - 1] = active_until
    batch[2 * i] = members[i]
  end
  for first = 1, admitted, 1000 do  -- unpack() has a stack limit (about 8,000 values)
    local last = math.min(first + 999, admitted)
    redis.call('ZADD', KEYS[3], unpack(batch, 2 * first - 1, 2 * last))
  end
end

-- Unused allowance is not banked: a full room or an empty queue must not
-- build up a burst. Only what the per-call limit held back carries over.
local carry = allowance - want
if n == tonumber(ARGV[1]) and want > n then carry = math.min(allowance - n, rate * 60) end

local observed = tonumber(tick[3])
if elapsed > 0 then
  -- Exponentially weighted over about 10 s, whatever the tick spacing; the
  -- first tick starts it at its own rate so early ETAs are not far too long.
  local alpha = observed and 1 - math.exp(-elapsed / 10000) or 1
  observed = (observed or 0) + alpha * (admitted * 1000 / elapsed - (observed or 0))
end
redis.call('HSET', KEYS[4], 'last_ms', now, 'carry', tostring(carry),
           'rate_obs', string.format('%.3f', observed or 0))
redis.call('HINCRBY', KEYS[4], 'admitted_total', admitted)
sample()
return answer(admitted, expired, 'ok')
