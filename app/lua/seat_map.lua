-- The live seat states of an event, for an entered, still-active person.
-- KEYS[1] seats  KEYS[2] the person's entrance record  KEYS[3] active
-- ARGV[1] user id  ARGV[2] session id ("" for staff: no entrance check)
-- Returns {now_ms, active_until_ms (0 for staff), seat id, state, ...}, or
-- {now_ms, 0} alone when the session has not entered or its window is over.
local now = now_ms()
local entered = 0
if ARGV[2] ~= '' then
  entered = entered_until(KEYS[2], KEYS[3], ARGV[1], ARGV[2], now)
  if not entered then return {now, 0} end
end
local result = {now, entered}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all do result[#result + 1] = all[i] end
return result
