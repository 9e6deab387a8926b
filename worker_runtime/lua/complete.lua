--[[ complete: acknowledge finished jobs in one batch.
KEYS[1] active     ZSET
KEYS[2] completed  ZSET id -> finish ms (retained records)
KEYS[3] stats      HASH (completed, busy_ms)
KEYS[4] job prefix
ARGV[1] keep completed: -1 keep all, 0 delete at once, N keep the newest N
ARGV[2] lease token
ARGV[3..] pairs: id, result JSON ('' for none)
Returns: number of jobs acknowledged (a job whose lease was lost is skipped). ]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local keep = tonumber(ARGV[1])
local token = ARGV[2]
local n, busy = 0, 0
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  local jk = KEYS[4] .. id
  local lease = redis.call('HMGET', jk, 'lk', 'st')
  if lease[1] == token and redis.call('ZREM', KEYS[1], id) == 1 then
    n = n + 1
    if lease[2] then busy = busy + (now - tonumber(lease[2])) end
    if keep == 0 then
      redis.call('DEL', jk)
    else
      redis.call('HSET', jk, 'state', 'completed', 'res', ARGV[i + 1], 'fin', now)
      redis.call('HINCRBY', jk, 'att', 1)
      redis.call('HDEL', jk, 'lk')
      redis.call('ZADD', KEYS[2], now, id)
    end
  end
end
if n > 0 then
  redis.call('HINCRBY', KEYS[3], 'completed', n)
  -- Summed run time (lease start to ack) lets observers derive the mean job duration.
  redis.call('HINCRBY', KEYS[3], 'busy_ms', busy)
end
if keep > 0 then
  local excess = redis.call('ZCARD', KEYS[2]) - keep
  if excess > 0 then
    local old = redis.call('ZRANGE', KEYS[2], 0, excess - 1)
    for _, id in ipairs(old) do redis.call('DEL', KEYS[4] .. id) end
    redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
  end
end
return n
