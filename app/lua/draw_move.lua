-- Move one batch of the drawn pre-queue into the queue, each person at the
-- place the draw gave them (app/draw.py). The drawn places are scored below
-- zero, so they go ahead of everyone who joined after the opening (scored by
-- the join sequence, from 1). Idempotent: a person already moved, or who
-- left the pre-queue meanwhile, is skipped.
-- KEYS[1] pre-queue  KEYS[2] queue
-- ARGV: score, user id, score, user id, ...
-- Returns how many people this batch moved.
local moved = 0
for i = 1, #ARGV, 2 do
  if redis.call('ZREM', KEYS[1], ARGV[i + 1]) == 1 then
    redis.call('ZADD', KEYS[2], 'NX', ARGV[i], ARGV[i + 1])
    moved = moved + 1
  end
end
return moved
