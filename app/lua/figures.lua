-- The figures /metrics reports for one event (app/metrics.py), in one call:
-- the sets' sizes (ZCARD: a million people are counted, never read), the
-- settings and the tick's counters, and the seats hash (one entry per taken
-- seat, bounded by the venue) counted by state here, so no entry leaves Redis.
-- The seat counts are kept in KEYS[7] for ARGV[1] ms and shared by every
-- host's scrapes: counting 100,000 entries holds the event's master ~35 ms.
-- KEYS[1] config  KEYS[2] queue  KEYS[3] pre-queue  KEYS[4] active  KEYS[5] tick
-- KEYS[6] seats  KEYS[7] the last count (hash: at, held, paying, booked, blocked)
-- KEYS[8] the people staying in line for returned seats (set)
-- ARGV[1] how long a count serves, ms (0: count every time)
-- Returns {now_ms, queue, pre-queue, active, held, paying, booked, blocked,
-- admitting (1/0), ms since the last tick (-1: none yet), then as stored
-- (false when absent): state, max_active, rate, sold_out, admitted_total,
-- rate_obs, expired_total, cleanup_removed, repaired_total, then people staying}.
local now = now_ms()
local function count_seats()
  local counts = {held = 0, paying = 0, booked = 0, blocked = 0}
  local states = redis.call('HVALS', KEYS[6])
  for i = 1, #states do
    local state = states[i]
    local head = string.sub(state, 1, 3)
    if head == 'boo' then counts.booked = counts.booked + 1
    elseif head == 'blo' then counts.blocked = counts.blocked + 1
    else
      local fields = seat_fields(state)
      if seat_taken_until(fields, now) then counts[fields[1]] = counts[fields[1]] + 1 end
    end
  end
  return counts
end

local counts
local serves = tonumber(ARGV[1])
local last = redis.call('HMGET', KEYS[7], 'at', 'held', 'paying', 'booked', 'blocked')
if serves > 0 and last[1] and now - tonumber(last[1]) < serves then
  counts = {held = tonumber(last[2]), paying = tonumber(last[3]), booked = tonumber(last[4]),
            blocked = tonumber(last[5])}
else
  counts = count_seats()
  if serves > 0 then
    redis.call('HSET', KEYS[7], 'at', now, 'held', counts.held, 'paying', counts.paying,
               'booked', counts.booked, 'blocked', counts.blocked)
    redis.call('PEXPIRE', KEYS[7], 2 * serves)
  end
end

local cfg = redis.call('HMGET', KEYS[1], 'state', 'max_active', 'rate', 'sold_out',
                       'opens_at_ms', 'drawn')
local tick = redis.call('HMGET', KEYS[5], 'ticked_ms', 'admitted_total', 'rate_obs',
                        'expired_total', 'cleanup_removed', 'repaired_total')
-- As admit.lua decides: open, the sale open, its draw made (if it has one), seats left.
local opens_at = tonumber(cfg[5]) or 0
local draw_due = opens_at > 0 and cfg[6] ~= '1'
local lets_in = cfg[1] and admitting(cfg[1], cfg[5], now) and not draw_due and cfg[4] ~= '1'
local since = -1
if tick[1] then since = now - tonumber(tick[1]) end

return {now, redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[3]),
        redis.call('ZCARD', KEYS[4]), counts.held, counts.paying, counts.booked,
        counts.blocked, lets_in and 1 or 0, since,
        cfg[1], cfg[2], cfg[3], cfg[4], tick[2], tick[3], tick[4], tick[5], tick[6],
        redis.call('SCARD', KEYS[8])}
