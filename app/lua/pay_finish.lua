-- Checkout, step 3. After the database committed: mark the seats booked (no
-- expiry), free the buyer's active slot, and put any other seats the buyer
-- still holds back on sale (with the window gone they could not pay for
-- them, and nobody else could have them). After it refused: give the
-- seats back to the buyer's hold (if the hold has not run out meanwhile).
-- Only seats still in this payment (same buyer, same token) are touched.
-- KEYS[1] seats  KEYS[2] the person's holds (set)  KEYS[3] entrance record  KEYS[4] active
-- KEYS[5] seats bought (hash: user id -> how many; hold.lua counts them)
-- ARGV[1] user id  ARGV[2] "booked" or "abort"  ARGV[3..] seat id, token, ...
-- Returns the number of seats changed.
local now = now_ms()
local changed, bought = 0, 0
for i = 3, #ARGV, 2 do
  local seat, token = ARGV[i], ARGV[i + 1]
  local s = seat_fields(redis.call('HGET', KEYS[1], seat))
  if ARGV[2] == 'booked' then
    -- The database is the truth: booked even if the lease ran out meanwhile.
    -- Counted as bought unless the reconcile job got here first (it copies
    -- both the seat and the count from MySQL).
    if not (s[1] == 'booked' and s[2] == ARGV[1] and s[3] == token) then bought = bought + 1 end
    redis.call('HSET', KEYS[1], seat, 'booked:' .. ARGV[1] .. ':' .. token)
    redis.call('SREM', KEYS[2], seat)
    changed = changed + 1
  elseif s[1] == 'paying' and s[2] == ARGV[1] and s[3] == token then
    if tonumber(s[5]) > now then
      redis.call('HSET', KEYS[1], seat, 'held:' .. ARGV[1] .. ':' .. token .. ':' .. s[5])
    else
      redis.call('HDEL', KEYS[1], seat)
      redis.call('SREM', KEYS[2], seat)
    end
    changed = changed + 1
  end
end
if ARGV[2] == 'booked' then
  if bought > 0 then redis.call('HINCRBY', KEYS[5], ARGV[1], bought) end
  for _, seat in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    local s = seat_fields(redis.call('HGET', KEYS[1], seat))
    if s[1] == 'held' and s[2] == ARGV[1] then redis.call('HDEL', KEYS[1], seat) end
  end
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('DEL', KEYS[3])
end
return changed
