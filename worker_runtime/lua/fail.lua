--[[ fail: record one failed attempt, then retry, dead-letter or fail the job.
KEYS[1] active   ZSET
KEYS[2] wait     LIST
KEYS[3] delayed  ZSET
KEYS[4] dead     ZSET id -> ms (dead-letter store)
KEYS[5] failed   ZSET id -> ms (final failures kept when dead-lettering is off)
KEYS[6] stats    HASH
KEYS[7] marker   ZSET
KEYS[8] job prefix
ARGV[1] id
ARGV[2] lease token
ARGV[3] action: 'retry' | 'dead' | 'fail'
ARGV[4] retry delay (ms)
ARGV[5] error message
ARGV[6] traceback
ARGV[7] attempt record (JSON object appended to the history; finished_at is set here)
Returns: 1 applied, 0 lease lost (another worker owns the job now). ]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local id, token = ARGV[1], ARGV[2]
local jk = KEYS[8] .. id
if redis.call('HGET', jk, 'lk') ~= token or redis.call('ZREM', KEYS[1], id) == 0 then
  return 0
end
local started = redis.call('HGET', jk, 'st')
if started then redis.call('HINCRBY', KEYS[6], 'busy_ms', now - tonumber(started)) end
local hist = redis.call('HGET', jk, 'hist')
local entries = hist and cjson.decode(hist) or {}
local rec = cjson.decode(ARGV[7])
rec['finished_at'] = now
entries[#entries + 1] = rec
redis.call('HSET', jk, 'err', ARGV[5], 'tb', ARGV[6], 'hist', cjson.encode(entries))
redis.call('HINCRBY', jk, 'att', 1)
redis.call('HDEL', jk, 'lk')
local action = ARGV[3]
if action == 'retry' then
  redis.call('HINCRBY', KEYS[6], 'retried', 1)
  local delay = tonumber(ARGV[4])
  if delay > 0 then
    local due = now + delay
    redis.call('HSET', jk, 'state', 'delayed', 'due', due)
    redis.call('ZADD', KEYS[3], due, id)
    redis.call('ZADD', KEYS[7], 'LT', due, 'd')
  else
    redis.call('HSET', jk, 'state', 'waiting')
    redis.call('RPUSH', KEYS[2], id)
    redis.call('ZADD', KEYS[7], 0, 'w')
  end
elseif action == 'dead' then
  redis.call('HSET', jk, 'state', 'dead', 'fin', now)
  redis.call('ZADD', KEYS[4], now, id)
  redis.call('HINCRBY', KEYS[6], 'failed', 1)
else
  redis.call('HSET', jk, 'state', 'failed', 'fin', now)
  redis.call('ZADD', KEYS[5], now, id)
  redis.call('HINCRBY', KEYS[6], 'failed', 1)
end
return 1
