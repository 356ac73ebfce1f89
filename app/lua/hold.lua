-- Hold a seat for an entered, still-active person of an event on sale. Fails
-- if the event is closed, if the seat is held, being paid for, booked or
-- blocked, or if the person's seats of this event (held, being paid for and
-- bought) already reach the event's limit per person. Hands out a fencing token from the seat's counter (a hash
-- that never expires), so a later holder always has a larger token. (Seat
-- states: see _prelude.lua.)
-- KEYS[1] config  KEYS[2] seats  KEYS[3] fence  KEYS[4] the person's holds (set)
-- KEYS[5] the person's entrance record  KEYS[6] active  KEYS[7] seats bought (hash)
-- ARGV[1] user id  ARGV[2] session id  ARGV[3] seat id
-- Returns {"held", token, until_ms, now_ms}, {"yours", token, until_ms, now_ms}
-- (already held by this person), {"limit", most seats per person}, or one of
-- {"not_entered"}, {"closed"}, {"taken"}, {"booked"}, {"blocked"},
-- {"no_event"} (no config: reload and retry).
local cfg = redis.call('HMGET', KEYS[1], 'state', 'hold_ttl_ms', 'max_seats')
if not cfg[1] or not cfg[3] then return {'no_event'} end
if cfg[1] == 'closed' then return {'closed'} end
local now = now_ms()
local active_until = entered_until(KEYS[5], KEYS[6], ARGV[1], ARGV[2], now)
if not active_until then return {'not_entered'} end

local s = seat_fields(redis.call('HGET', KEYS[2], ARGV[3]))
if s[1] == 'booked' or s[1] == 'blocked' then return {s[1]} end
if seat_taken_until(s, now) then
  if s[1] == 'held' and s[2] == ARGV[1] then return {'yours', s[3], s[4], now} end
  return {'taken'}
end

-- The per-person limit counts seats bought and live holds and payments;
-- forget lapsed ones. (MySQL checks the same limit again at checkout.)
local mine = tonumber(redis.call('HGET', KEYS[7], ARGV[1]) or '0')
for _, seat in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  local other = seat_fields(redis.call('HGET', KEYS[2], seat))
  if seat_taken_until(other, now) and other[2] == ARGV[1] then
    mine = mine + 1
  else
    redis.call('SREM', KEYS[4], seat)
  end
end
if mine >= tonumber(cfg[3]) then return {'limit', cfg[3]} end

local token = redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
-- A hold never outlives the holder's window: after it they could not pay.
local hold_until = math.min(now + tonumber(cfg[2]), active_until)
redis.call('HSET', KEYS[2], ARGV[3], 'held:' .. ARGV[1] .. ':' .. token .. ':' .. hold_until)
redis.call('SADD', KEYS[4], ARGV[3])
-- The set outlives every hold in it (hold_ttl may have been lowered since
-- an earlier one: never shorten it, or those holds would stop counting).
local keep = hold_until - now + 60000
if redis.call('PTTL', KEYS[4]) < keep then redis.call('PEXPIRE', KEYS[4], keep) end
return {'held', token, hold_until, now}
