-- The exact states of the seats one entered, still-active person holds or
-- pays for, and of a few more seats asked for (the seat an action touched):
-- the rest of the fan's seat map comes from a snapshot shared by everyone
-- (app/seat_map.py), so a refresh does not read every seat.
-- KEYS[1] seats  KEYS[2] the person's holds (set)  KEYS[3] entrance record  KEYS[4] active
-- KEYS[5] config  KEYS[6] seats bought (hash)
-- ARGV[1] user id  ARGV[2] session id  ARGV[3...] more seat ids
-- Returns {now_ms, active_until_ms, most seats per person, seats bought,
-- seat id, state, ...} (state "" when available), {now_ms, 0} alone when the
-- session has not entered or its window is over, or {"no_event"}.
local most = redis.call('HGET', KEYS[5], 'max_seats')
if not most then return {'no_event'} end
local now = now_ms()
local entered = entered_until(KEYS[3], KEYS[4], ARGV[1], ARGV[2], now)
if not entered then return {now, 0} end
local result = {now, entered, most, redis.call('HGET', KEYS[6], ARGV[1]) or '0'}
local function add(seat)
  result[#result + 1] = seat
  result[#result + 1] = redis.call('HGET', KEYS[1], seat) or ''
end
for _, seat in ipairs(redis.call('SMEMBERS', KEYS[2])) do add(seat) end
for i = 3, #ARGV do add(ARGV[i]) end
return result
