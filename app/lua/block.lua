-- Staff: block a seat so nobody can hold it, unless it is held, being paid
-- for, or sold (then say which). Blocking an already blocked seat is fine.
-- KEYS[1] seats
-- ARGV[1] seat id
-- Returns {"blocked"} or {"held"|"paying"|"booked", holder id}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HGET', KEYS[1], ARGV[1])
if state and state ~= 'blocked' then
  local s = {}
  for field in string.gmatch(state, '[^:]+') do s[#s + 1] = field end
  if s[1] == 'booked' or tonumber(s[4]) > now then return {s[1], s[2]} end
end
redis.call('HSET', KEYS[1], ARGV[1], 'blocked')
return {'blocked'}
