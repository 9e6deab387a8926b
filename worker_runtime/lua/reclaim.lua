--[[ reclaim: requeue jobs whose lease expired (their worker died); fail repeat stallers.
KEYS[1] active   ZSET
KEYS[2] wait     LIST
KEYS[3] dead     ZSET
KEYS[4] failed   ZSET
KEYS[5] stats    HASH
KEYS[6] marker   ZSET
KEYS[7] job prefix
ARGV[1] max stalls: a job stalled more often than this fails
ARGV[2] max jobs to reclaim in this call
ARGV[3] 1 = failures go to the dead-letter store, 0 = to the failed set
Returns: {{requeued ids}, {failed ids}} ]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local max_stalls = tonumber(ARGV[1])
local to_dead = ARGV[3] == '1'
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local requeued, failed = {}, {}
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local jk = KEYS[7] .. id
  if redis.call('EXISTS', jk) == 1 then
    local stalls = redis.call('HINCRBY', jk, 'stl', 1)
    redis.call('HDEL', jk, 'lk')
    redis.call('HINCRBY', KEYS[5], 'stalled', 1)
    if stalls > max_stalls then
      local msg = 'job stalled ' .. stalls .. ' times (worker lost while running it)'
      local hist = redis.call('HGET', jk, 'hist')
      local entries = hist and cjson.decode(hist) or {}
      entries[#entries + 1] = {error = msg, finished_at = now, stalled = true}
      redis.call('HSET', jk, 'err', msg, 'tb', '', 'hist', cjson.encode(entries), 'fin', now)
      if to_dead then
        redis.call('HSET', jk, 'state', 'dead')
        redis.call('ZADD', KEYS[3], now, id)
      else
        redis.call('HSET', jk, 'state', 'failed')
        redis.call('ZADD', KEYS[4], now, id)
      end
      redis.call('HINCRBY', KEYS[5], 'failed', 1)
      failed[#failed + 1] = id
    else
      -- To the head: it was taken before anything still waiting.
      redis.call('HSET', jk, 'state', 'waiting')
      redis.call('LPUSH', KEYS[2], id)
      requeued[#requeued + 1] = id
    end
  end
end
if #requeued > 0 then redis.call('ZADD', KEYS[6], 0, 'w') end
return {requeued, failed}
