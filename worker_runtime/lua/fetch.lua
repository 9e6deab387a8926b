--[[ fetch: lease up to N ready jobs to one worker, promoting due delayed jobs first.
KEYS[1] wait     LIST
KEYS[2] active   ZSET  id -> lease deadline ms
KEYS[3] delayed  ZSET  id -> due ms
KEYS[4] marker   ZSET
KEYS[5] job prefix
ARGV[1] lease (ms)
ARGV[2] max jobs
ARGV[3] lease token
Times are Redis' own clock (TIME). (identifies the worker holding the lease)
Returns: {next delayed due ms or -1, id, payload, attempts made, stalls, id, ...} ]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local deadline = now + tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local token = ARGV[3]
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 1000)
if #due > 0 then
  for _, id in ipairs(due) do
    redis.call('HSET', KEYS[5] .. id, 'state', 'waiting')
  end
  redis.call('RPUSH', KEYS[1], unpack(due))
  redis.call('ZREM', KEYS[3], unpack(due))
end
local out = {-1}
local ids = redis.call('LPOP', KEYS[1], max)
if ids then
  for _, id in ipairs(ids) do
    local jk = KEYS[5] .. id
    local f = redis.call('HMGET', jk, 'data', 'att', 'stl')
    -- A job removed while it waited has no hash left: drop its stale id.
    if f[1] then
      redis.call('HSET', jk, 'state', 'active', 'lk', token, 'st', now)
      redis.call('ZADD', KEYS[2], deadline, id)
      out[#out + 1] = id
      out[#out + 1] = f[1]
      out[#out + 1] = f[2]
      out[#out + 1] = f[3]
    end
  end
end
-- Wake another idle worker when work remains.
if redis.call('LLEN', KEYS[1]) > 0 then redis.call('ZADD', KEYS[4], 0, 'w') end
local nxt = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
if nxt[2] then out[1] = tonumber(nxt[2]) end
return out
