--[[ observe: one queue's load, read in one call (read-only; for autoscalers and gauges).
KEYS[1] wait     LIST
KEYS[2] delayed  ZSET id -> due ms
KEYS[3] active   ZSET
KEYS[4] stats    HASH (enqueued, completed, failed, retried, stalled, busy_ms)
KEYS[5] dead     ZSET
KEYS[6] job prefix
ARGV: none
Returns: {now ms, waiting, due delayed, delayed, active, dead, enqueued, completed, failed,
          busy_ms, oldest waiting job's enqueue time ms or -1, retried} ]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local oldest = -1
local head = redis.call('LINDEX', KEYS[1], 0)
if head then
  local ts = redis.call('HGET', KEYS[6] .. head, 'ts')
  if ts then oldest = tonumber(ts) end
end
local s = redis.call('HMGET', KEYS[4], 'enqueued', 'completed', 'failed', 'busy_ms', 'retried')
return {
  now,
  redis.call('LLEN', KEYS[1]),
  redis.call('ZCOUNT', KEYS[2], '-inf', now),
  redis.call('ZCARD', KEYS[2]),
  redis.call('ZCARD', KEYS[3]),
  redis.call('ZCARD', KEYS[5]),
  tonumber(s[1] or 0), tonumber(s[2] or 0), tonumber(s[3] or 0), tonumber(s[4] or 0),
  oldest,
  tonumber(s[5] or 0),
}
