-- Staff: block a seat so nobody can hold it, unless it is held, being paid
-- for, or sold (then say which). Blocking an already blocked seat is fine.
-- KEYS[1] seats
-- ARGV[1] seat id
-- Returns {"blocked"} or {"held"|"paying"|"booked", holder id}.
local s = seat_fields(redis.call('HGET', KEYS[1], ARGV[1]))
if s[1] == 'booked' or seat_taken_until(s, now_ms()) then return {s[1], s[2]} end
redis.call('HSET', KEYS[1], ARGV[1], 'blocked')
return {'blocked'}
