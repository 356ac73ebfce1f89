-- Is this session entered and still active? Every booking endpoint asks.
-- KEYS[1] the person's admission record  KEYS[2] active
-- ARGV[1] user id  ARGV[2] session id
-- Returns the end of the active window in ms, or 0.
local record = redis.call('HMGET', KEYS[1], 'session', 'until')
if record[1] ~= ARGV[2] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local active_until = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not active_until or active_until ~= record[2] or tonumber(active_until) <= now then return 0 end
return tonumber(active_until)
