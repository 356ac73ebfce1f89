-- Where a person stands in an event, for the pages that show it (read
-- only: no heartbeat, no token; the waiting page's poll does those).
-- KEYS[1] the person's entrance record  KEYS[2] active  KEYS[3] queue  KEYS[4] pre-queue
-- ARGV[1] user id  ARGV[2] session id ('' for none)
-- Returns, while their window is open, {"here"} (this session entered),
-- {"elsewhere"} (another session did) or {"not_entered"} (token not used
-- yet); else {"queue", rank (0-based)}, {"prequeue"}, or {"none"}.
local now = now_ms()
local active_until = redis.call('ZSCORE', KEYS[2], ARGV[1])
if active_until and tonumber(active_until) > now then
  local record = redis.call('HMGET', KEYS[1], 'session', 'until')
  if record[2] ~= active_until or not record[1] then return {'not_entered'} end
  return {record[1] == ARGV[2] and 'here' or 'elsewhere'}
end
local rank = redis.call('ZRANK', KEYS[3], ARGV[1])
if rank then return {'queue', rank} end
if redis.call('ZSCORE', KEYS[4], ARGV[1]) then return {'prequeue'} end
return {'none'}
