--[[ release: hand unfinished jobs back on shutdown, without charging an attempt.
KEYS[1] active  ZSET
KEYS[2] wait    LIST
KEYS[3] marker  ZSET
KEYS[4] job prefix
KEYS[5] prio    ZSET (ready jobs with a priority)
KEYS[6] stats   HASH ('released' += jobs put back: runs a shutdown interrupted, counted where
                 they outlive the pod, e.g. for scaling benchmarks)
ARGV[1..] pairs: job id, lease token
Returns: number of jobs put back. ]]
local n = 0
for i = 1, #ARGV, 2 do
  local id = ARGV[i]
  local jk = KEYS[4] .. id
  if redis.call('HGET', jk, 'lk') == ARGV[i + 1] and redis.call('ZREM', KEYS[1], id) == 1 then
    redis.call('HSET', jk, 'state', 'waiting')
    redis.call('HDEL', jk, 'lk')
    -- To the head of its priority: sequence 0 sorts before every other job of that priority.
    local pri = tonumber(redis.call('HGET', jk, 'pri'))
    if pri then
      redis.call('ZADD', KEYS[5], string.format('%.0f', -pri * 4294967296), id)
    else
      redis.call('LPUSH', KEYS[2], id)
    end
    n = n + 1
  end
end
if n > 0 then
  redis.call('ZADD', KEYS[3], 0, 'w')
  redis.call('HINCRBY', KEYS[6], 'released', n)
end
return n
