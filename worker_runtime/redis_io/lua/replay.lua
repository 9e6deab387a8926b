--[[ replay: move dead-lettered jobs back to the queue with a fresh attempt budget.
KEYS[1] dead    ZSET
KEYS[2] wait    LIST
KEYS[3] marker  ZSET
KEYS[4] job prefix
KEYS[5] prio    ZSET (ready jobs with a priority)
KEYS[6] stats   HASH ('pseq': the priority sequence)
ARGV[1..] job ids
Returns: number of jobs replayed (ids not in the dead-letter store are ignored). ]]
local n = 0
for i = 1, #ARGV do
  local id = ARGV[i]
  if redis.call('ZREM', KEYS[1], id) == 1 then
    local jk = KEYS[4] .. id
    -- History and last error stay for the record; the counters start over.
    redis.call('HSET', jk, 'state', 'waiting', 'att', 0, 'stl', 0)
    redis.call('HINCRBY', jk, 'replays', 1)
    redis.call('HDEL', jk, 'fin')
    local pri = tonumber(redis.call('HGET', jk, 'pri'))
    if pri then
      local seq = redis.call('HINCRBY', KEYS[6], 'pseq', 1) % 4294967296
      redis.call('ZADD', KEYS[5], string.format('%.0f', -pri * 4294967296 + seq), id)
    else
      redis.call('RPUSH', KEYS[2], id)
    end
    n = n + 1
  end
end
if n > 0 then redis.call('ZADD', KEYS[3], 0, 'w') end
return n
