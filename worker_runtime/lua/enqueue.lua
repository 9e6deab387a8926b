--[[ enqueue: add jobs to a queue, skipping ids that already exist (dedup).
KEYS[1] wait     LIST  ready job ids
KEYS[2] delayed  ZSET  id -> due ms
KEYS[3] marker   ZSET  wake-up marker for idle workers
KEYS[4] stats    HASH  counters
KEYS[5] job prefix (job hash = prefix .. id; same hash tag)
ARGV[1..] triples: id, payload JSON, delay ms (0 = ready now)
Time is Redis' own clock (TIME), so producers and workers need no clock sync.
Returns: one flag per job, 1 added, 0 already existed. ]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local out = {}
local ready, added = 0, 0
local next_due = nil
for i = 1, #ARGV, 3 do
  local id, data, delay = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local due = now + delay
  local jk = KEYS[5] .. id
  if redis.call('EXISTS', jk) == 1 then
    out[#out + 1] = 0
  else
    added = added + 1
    if delay > 0 then
      redis.call('HSET', jk, 'data', data, 'ts', now, 'att', 0, 'stl', 0, 'state', 'delayed', 'due', due)
      redis.call('ZADD', KEYS[2], due, id)
      if next_due == nil or due < next_due then next_due = due end
    else
      redis.call('HSET', jk, 'data', data, 'ts', now, 'att', 0, 'stl', 0, 'state', 'waiting')
      redis.call('RPUSH', KEYS[1], id)
      ready = ready + 1
    end
    out[#out + 1] = 1
  end
end
if added > 0 then redis.call('HINCRBY', KEYS[4], 'enqueued', added) end
if ready > 0 then redis.call('ZADD', KEYS[3], 0, 'w') end
if next_due ~= nil then redis.call('ZADD', KEYS[3], 'LT', next_due, 'd') end
return out
