-- Checkout, step 1: verify every (seat, holder, token) and move them all to
-- "being paid for" under a short lease nobody else can take. All or nothing.
-- A repeat of the same checkout (same seats, same tokens, lease still on) passes.
-- KEYS[1] config  KEYS[2] seats  KEYS[3] the person's admission record  KEYS[4] active
-- ARGV[1] user id  ARGV[2] session id  ARGV[3] lease ms  ARGV[4..] seat id, token, ...
-- Returns {"paying", lease_until_ms}, {"not_entered"}, {"no_event"}, or
-- {"mismatch", seat id, reason} with reason expired, taken, stale, booked or blocked.
local cfg = redis.call('HGET', KEYS[1], 'state')
if not cfg then return {'no_event'} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local record = redis.call('HMGET', KEYS[3], 'session', 'until')
local active_until = redis.call('ZSCORE', KEYS[4], ARGV[1])
if record[1] ~= ARGV[2] or not active_until or active_until ~= record[2]
    or tonumber(active_until) <= now then
  return {'not_entered'}
end

local hold_until = {}
for i = 4, #ARGV, 2 do
  local seat, token = ARGV[i], ARGV[i + 1]
  local state = redis.call('HGET', KEYS[2], seat)
  local s = {}
  if state then for field in string.gmatch(state, '[^:]+') do s[#s + 1] = field end end
  if s[1] == 'booked' or s[1] == 'blocked' then return {'mismatch', seat, s[1]} end
  local live = s[4] and tonumber(s[4]) > now
  if not live then return {'mismatch', seat, 'expired'} end
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
return {'paying', lease_until}
