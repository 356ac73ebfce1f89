-- The rules several scripts share, in one place: app/scripts.py puts this
-- in front of every script in app/lua/ (files starting with "_" are not
-- scripts of their own).

-- Redis's clock, in ms: web servers and workers with different clocks agree.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A seat's state in the seats hash (absent = available), split at ':':
--   held:<user>:<token>:<until_ms>   paying:<user>:<token>:<lease_ms>:<hold_until_ms>
--   booked:<user>:<token>            blocked
-- Returns {} for an absent state.
local function seat_fields(state)
  local fields = {}
  if state then
    for field in string.gmatch(state, '[^:]+') do fields[#fields + 1] = field end
  end
  return fields
end

-- A hold or a payment lease that has not run out (held or paying, and its
-- time, the 4th field, is still ahead).
local function seat_taken_until(fields, now)
  return (fields[1] == 'held' or fields[1] == 'paying') and tonumber(fields[4]) > now
end

-- "Entered and still active": this session consumed the admission token of
-- the person's current window (the entrance record names the session and
-- the window's end), and that window, the person's score in the active set,
-- has not ended. Every booking script asks this in the same call that acts.
-- Returns the window's end in ms, or nil.
local function entered_until(entrance_key, active_key, user, session, now)
  if session == '' then return nil end
  local record = redis.call('HMGET', entrance_key, 'session', 'until')
  local until_ms = redis.call('ZSCORE', active_key, user)
  if record[1] ~= session or not until_ms or until_ms ~= record[2]
      or tonumber(until_ms) <= now then
    return nil
  end
  return tonumber(until_ms)
end

-- Admission lets people in only while the event is open and its sale has
-- opened (config fields `state` and `opens_at_ms`).
local function admitting(state, opens_at_ms, now)
  return state == 'open' and now >= (tonumber(opens_at_ms) or 0)
end

-- What a waiting person is told (join and poll):
-- {"waiting", rank (0-based), waiting_total, paused (0/1), observed admissions/s}.
local function waiting_answer(rank, queue_key, tick_key, is_admitting)
  return {'waiting', rank, redis.call('ZCARD', queue_key), is_admitting and 0 or 1,
          redis.call('HGET', tick_key, 'rate_obs') or '0'}
end
