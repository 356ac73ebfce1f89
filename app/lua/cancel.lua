-- After a cancellation committed in MySQL: put its seats back on sale. A
-- seat's state is cleared only while it is still the cancelled booking's
-- (booked by this person with this token); the fence counter is raised to
-- MySQL's new token, so the next hold gets a larger one; the person's
-- bought count goes down by the seats cleared (never below 0).
-- KEYS[1] seats  KEYS[2] fence  KEYS[3] seats bought (hash: user id -> how many)
-- ARGV[1] user id  ARGV[2..] seat id, booked token, new fencing token, ...
-- Returns the number of seats cleared.
local cleared = 0
for i = 2, #ARGV, 3 do
  local seat, token, fence = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('HGET', KEYS[1], seat) == 'booked:' .. ARGV[1] .. ':' .. token then
    redis.call('HDEL', KEYS[1], seat)
    cleared = cleared + 1
  end
  if tonumber(redis.call('HGET', KEYS[2], seat) or '0') < tonumber(fence) then
    redis.call('HSET', KEYS[2], seat, fence)
  end
end
if cleared > 0 then
  local left = redis.call('HINCRBY', KEYS[3], ARGV[1], -cleared)
  if left <= 0 then redis.call('HDEL', KEYS[3], ARGV[1]) end
end
return cleared
