--[[ observe: one queue's load, read in one call (read-only; for autoscalers and gauges).
KEYS[1] wait     LIST
KEYS[2] delayed  ZSET id -> due ms
KEYS[3] active   ZSET
KEYS[4] stats    HASH (enqueued, completed, failed, retried, stalled, busy_ms)
KEYS[5] dead     ZSET
KEYS[6] job prefix
KEYS[7] prio     ZSET ready jobs with a priority (optional: derived from KEYS[1] when absent)
ARGV: none
'waiting' counts every ready job: the plain LIST, prioritized jobs, and jobs parked by a
per-group rate limit (the stats 'parked' count).
Returns: {now ms, waiting, due delayed, delayed, active, dead, enqueued, completed, failed,
          busy_ms, oldest waiting job's enqueue time ms or -1, retried} ]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
-- Same hash tag as KEYS[1] ('<base>:wait'), so the derived name stays in this slot.
local prio = KEYS[7] or (string.sub(KEYS[1], 1, -5) .. 'prio')
local oldest = -1
local function older(id)
  if not id then return end
  local ts = tonumber(redis.call('HGET', KEYS[6] .. id, 'ts'))
  if ts and (oldest < 0 or ts < oldest) then oldest = ts end
end
older(redis.call('LINDEX', KEYS[1], 0))
-- The next prioritized job to run (approximates the oldest one: higher priorities go first).
older(redis.call('ZRANGE', prio, 0, 0)[1])
local s = redis.call('HMGET', KEYS[4], 'enqueued', 'completed', 'failed', 'busy_ms', 'retried', 'parked')
return {
  now,
  redis.call('LLEN', KEYS[1]) + redis.call('ZCARD', prio) + math.max(tonumber(s[6] or 0), 0),
  redis.call('ZCOUNT', KEYS[2], '-inf', now),
  redis.call('ZCARD', KEYS[2]),
  redis.call('ZCARD', KEYS[3]),
  redis.call('ZCARD', KEYS[5]),
  tonumber(s[1] or 0), tonumber(s[2] or 0), tonumber(s[3] or 0), tonumber(s[4] or 0),
  oldest,
  tonumber(s[5] or 0),
}
