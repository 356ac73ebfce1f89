-- Move the person's entrance to this session ("Continue on this device"):
-- the same person, logged in again here or on another device, takes over
-- the window they were admitted to. The session that had it fails every
-- booking script's entered_until from then on; the holds are the person's,
-- not the session's, so they come along. Only while the window is open.
-- KEYS[1] the person's entrance record  KEYS[2] active
-- ARGV[1] user id  ARGV[2] session id
-- Returns {"moved", active_until_ms} or {"expired"} (no window, or it is over).
local record = redis.call('HMGET', KEYS[1], 'jti', 'until')
local active_until = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not record[1] or not active_until or active_until ~= record[2]
    or tonumber(active_until) <= now_ms() then
  return {'expired'}
end
redis.call('HSET', KEYS[1], 'session', ARGV[2], 'moved_at', now_ms())
return {'moved', active_until}
