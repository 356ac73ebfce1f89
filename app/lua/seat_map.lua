-- The live seat states of an event, for an entered, still-active person.
-- KEYS[1] seats  KEYS[2] the person's admission record  KEYS[3] active
-- ARGV[1] user id  ARGV[2] session id ("" for staff: no entrance check)
-- Returns {now_ms, active_until_ms (0 if not entered), seat id, state, ...}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local entered = 0
if ARGV[2] ~= '' then
  local record = redis.call('HMGET', KEYS[2], 'session', 'until')
  local active_until = redis.call('ZSCORE', KEYS[3], ARGV[1])
  if record[1] == ARGV[2] and active_until and active_until == record[2]
      and tonumber(active_until) > now then
    entered = tonumber(active_until)
  end
  if entered == 0 then return {now, 0} end
end
local result = {now, entered}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all do result[#result + 1] = all[i] end
return result
