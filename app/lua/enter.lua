-- Consume an admission token at the booking entrance. The first use binds it
-- to the session; the same session again is fine; any other session is refused.
-- KEYS[1] the person's entrance record  KEYS[2] active
-- ARGV[1] user id  ARGV[2] token id (jti)  ARGV[3] session id
-- Returns {"entered", active_until_ms} ({"again", active_until_ms}: the same
-- session once more), {"used_elsewhere"}, {"unknown"} (never issued, or
-- replaced by a newer window) or {"expired"} (window over).
local record = redis.call('HMGET', KEYS[1], 'jti', 'until', 'session')
if record[1] ~= ARGV[2] then return {'unknown'} end
local now = now_ms()
local active_until = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not active_until or tonumber(active_until) <= now or active_until ~= record[2] then
  return {'expired'}
end
if record[3] == ARGV[3] then return {'again', active_until} end
if record[3] then return {'used_elsewhere'} end
redis.call('HSET', KEYS[1], 'session', ARGV[3], 'used_at', now)
return {'entered', active_until}
