-- Checkout, step 1: the event must not be closed (a paused one lets the
-- people inside finish), the seats and the ones the person bought before
-- must fit the event's limit per person (MySQL checks it again, under the
-- user's lock); verify every (seat, holder, token) and move them all to
-- "being paid for" under a short lease nobody else can take. All or nothing.
-- A repeat of the same checkout (same seats, same tokens, lease still on) passes.
-- KEYS[1] config  KEYS[2] seats  KEYS[3] the person's entrance record  KEYS[4] active
-- KEYS[5] seats bought (hash)
-- ARGV[1] user id  ARGV[2] session id  ARGV[3] lease ms  ARGV[4..] seat id, token, ...
-- Returns {"paying", lease_until_ms, now_ms}, {"not_entered"}, {"closed"}, {"no_event"},
-- {"limit", most seats per person}, or
-- {"mismatch", seat id, reason} with reason expired, taken, stale, booked or blocked.
local cfg = redis.call('HMGET', KEYS[1], 'state', 'max_seats')
if not cfg[1] or not cfg[2] then return {'no_event'} end
if cfg[1] == 'closed' then return {'closed'} end
local bought = tonumber(redis.call('HGET', KEYS[5], ARGV[1]) or '0')
if bought + (#ARGV - 3) / 2 > tonumber(cfg[2]) then return {'limit', cfg[2]} end
local now = now_ms()
if not entered_until(KEYS[3], KEYS[4], ARGV[1], ARGV[2], now) then return {'not_entered'} end

local hold_until = {}
for i = 4, #ARGV, 2 do
  local seat, token = ARGV[i], ARGV[i + 1]
  local s = seat_fields(redis.call('HGET', KEYS[2], seat))
  if s[1] == 'booked' or s[1] == 'blocked' then return {'mismatch', seat, s[1]} end
  if not seat_taken_until(s, now) then return {'mismatch', seat, 'expired'} end
  if s[2] ~= ARGV[1] then return {'mismatch', seat, 'taken'} end
  if s[3] ~= token then return {'mismatch', seat, 'stale'} end
  hold_until[seat] = s[1] == 'held' and s[4] or s[5]
end

local lease_until = now + tonumber(ARGV[3])
for i = 4, #ARGV, 2 do
  local seat = ARGV[i]
  redis.call('HSET', KEYS[2], seat, 'paying:' .. ARGV[1] .. ':' .. ARGV[i + 1] .. ':'
             .. lease_until .. ':' .. hold_until[seat])
end
return {'paying', lease_until, now}
