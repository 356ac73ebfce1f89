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

-- The config fields the waiting room's scripts (join, poll) read, by name;
-- nil if the hash lacks them (Redis lost it, or it predates a field: the
-- caller answers "no_event" and the app writes it again).
local function queue_config(config_key)
  local v = redis.call('HMGET', config_key, 'state', 'opens_at_ms', 'sold_out', 'prequeue_ms',
                       'drawn', 'rate', 'window_ms', 'poll_scale', 'poll_budget',
                       'active_ttl_ms')
  if not v[1] or not v[10] then return nil end
  return {state = v[1], opens_at_ms = tonumber(v[2]), sold_out = v[3] == '1',
          prequeue_ms = tonumber(v[4]), drawn = v[5] == '1', rate = tonumber(v[6]),
          window_ms = tonumber(v[7]), poll_scale = v[8], poll_budget = v[9],
          active_ttl_ms = tonumber(v[10])}
end

-- What a waiting person in the queue is told (join and poll):
-- {"waiting", rank (0-based), waiting_total, paused (0/1), observed admissions/s,
--  poll scale, window ms, admissions/s}: app/waiting_room.py picks the interval.
-- The heartbeat is scored with the latest time the person may poll again
-- (app/capacity.py's latest_poll: the time to their turn plus the window),
-- so clean_up.lua finds the ones long past it.
local function waiting_answer(rank, user, keys_, cfg, now)
  redis.call('ZADD', keys_.heartbeat, now + cfg.window_ms + math.floor(rank * 1000 / cfg.rate),
             user)
  return {'waiting', rank, redis.call('ZCARD', keys_.queue),
          admitting(cfg.state, cfg.opens_at_ms, now) and 0 or 1,
          redis.call('HGET', keys_.tick, 'rate_obs') or '0',
          cfg.poll_scale, cfg.window_ms, cfg.rate}
end

-- What a person in the pre-queue (joined before the sale opened, place not
-- drawn yet) is told: {"prequeue", pre-queue size, ms until the opening
-- (<= 0: the draw is being made), poll budget, window ms}. Their polls
-- are at most a window apart, or land after the opening and the draw
-- (app/waiting_room.py), so the heartbeat allows three windows.
local function prequeue_answer(user, keys_, cfg, now)
  redis.call('ZADD', keys_.heartbeat, now + 3 * cfg.window_ms, user)
  return {'prequeue', redis.call('ZCARD', keys_.prequeue), cfg.opens_at_ms - now,
          cfg.poll_budget, cfg.window_ms}
end

-- What someone staying in line after the sale sold out is told (poll, join
-- and stay.lua): {"staying", rank (0-based), people staying, poll budget,
-- window ms}. Nobody moves until seats come back, so, as in the pre-queue,
-- their polls share the budget evenly at most a window apart, and the
-- heartbeat allows three windows.
local function staying_answer(rank, user, keys_, cfg, now)
  redis.call('ZADD', keys_.heartbeat, now + 3 * cfg.window_ms, user)
  return {'staying', rank, redis.call('SCARD', keys_.stay), cfg.poll_budget, cfg.window_ms}
end

-- Sold out, for someone who polls or joins. Staying in line (stay.lua) keeps
-- one's place. Anyone else in the queue is told, and leaves the queue for
-- the "told" set, which keeps their place should they choose to stay: so
-- when seats come back, admission takes those who stayed and those not told
-- yet (still waiting, as far as they know), never those who walked away.
-- Returns the staying answer, {"sold_out", "may_stay"} or {"sold_out"}.
local function sold_out_answer(user, keys_, cfg, now)
  local rank = redis.call('ZRANK', keys_.queue, user)
  if rank and redis.call('SISMEMBER', keys_.stay, user) == 1 then
    return staying_answer(rank, user, keys_, cfg, now)
  end
  if rank then
    redis.call('ZADD', keys_.told, redis.call('ZSCORE', keys_.queue, user), user)
    redis.call('ZREM', keys_.queue, user)
  end
  if redis.call('ZSCORE', keys_.told, user) then return {'sold_out', 'may_stay'} end
  return {'sold_out'}
end
