-- Bring Redis in line with MySQL for a batch of seats (after a restart, a
-- flush, or a sale opening). The database is the truth for booked and
-- blocked seats and for the highest fencing token it has seen; lapsed holds
-- are pruned. A held seat the database calls available stays held. A booked
-- seat the database calls available is cleared only if its token is older
-- than the database's (a cancellation raised it; an equal token is a sale
-- that committed after the database was read).
-- KEYS[1] seats  KEYS[2] fence
-- ARGV[1..] seat id, status (available|booked|blocked), holder id, fencing token, ...
-- Returns {seats changed, fence counters raised, lapsed holds pruned}: the
-- first two are where Redis disagreed with MySQL, the last is housekeeping.
local now = now_ms()
local changed, raised, lapsed = 0, 0, 0
for i = 1, #ARGV, 4 do
  local seat, status, holder, token = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if tonumber(redis.call('HGET', KEYS[2], seat) or '0') < tonumber(token) then
    redis.call('HSET', KEYS[2], seat, token)
    raised = raised + 1
  end
  local s = seat_fields(redis.call('HGET', KEYS[1], seat))
  if status == 'booked' and s[1] ~= 'booked' then
    redis.call('HSET', KEYS[1], seat, 'booked:' .. holder .. ':' .. token)
    changed = changed + 1
  elseif status == 'blocked' and s[1] ~= 'blocked' then
    redis.call('HSET', KEYS[1], seat, 'blocked')
    changed = changed + 1
  elseif status == 'available' and s[1] == 'booked' and tonumber(s[3]) < tonumber(token) then
    redis.call('HDEL', KEYS[1], seat)
    changed = changed + 1
  elseif status == 'available' and s[1] == 'blocked' then
    redis.call('HDEL', KEYS[1], seat)
    changed = changed + 1
  elseif status == 'available' and (s[1] == 'held' or s[1] == 'paying')
      and not seat_taken_until(s, now) then
    redis.call('HDEL', KEYS[1], seat)
    lapsed = lapsed + 1
  end
end
return {changed, raised, lapsed}
