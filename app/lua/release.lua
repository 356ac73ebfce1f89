-- Release a hold: only its holder may, and only with its token when one is given.
-- KEYS[1] seats  KEYS[2] the person's holds (set)
-- ARGV[1] user id  ARGV[2] seat id  ARGV[3] token, or "" for any token of this holder
-- Returns 1 if released, 0 if this person holds no such seat.
local s = seat_fields(redis.call('HGET', KEYS[1], ARGV[2]))
if s[1] ~= 'held' or s[2] ~= ARGV[1] or (ARGV[3] ~= '' and s[3] ~= ARGV[3]) then return 0 end
redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('SREM', KEYS[2], ARGV[2])
return 1
