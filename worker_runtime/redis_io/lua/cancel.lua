--[[ cancel: stop a job for good: it never runs (waiting, delayed, parked, waiting for its
children) or its worker stops it (active: the lease is withdrawn here; the worker learns it
at its next lease renewal, see extend.lua, and cancels the task). Never retried.
KEYS[1]  wait       LIST
KEYS[2]  active     ZSET
KEYS[3]  delayed    ZSET
KEYS[4]  prio       ZSET
KEYS[5]  cancelled  ZSET id -> ms
KEYS[6]  stats      HASH
KEYS[7]  job prefix
KEYS[8]  group parked prefix (LIST per group)
KEYS[9]  events     STREAM
KEYS[10] flows      ZSET parents waiting for children
KEYS[11] child failures prefix (HASH per parent)
KEYS[12] failed     ZSET
KEYS[13] dead       ZSET
KEYS[14] wait marker ZSET
ARGV[1] job id
ARGV[2] events stream length (approximate MAXLEN), 0 = no events
ARGV[3] reason ('' = none)
ARGV[4] 1 = the queue dead-letters final failures (a parent failed by this child goes there),
        0 = it does not, '' = as the queue's workers recorded it (stats 'dlq'; default 1)
Returns: the state the job was in ('' = no such job); only non-final states are cancelled. ]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local id, maxlen = ARGV[1], tonumber(ARGV[2])
local jk = KEYS[7] .. id
local f = redis.call('HMGET', jk, 'state', 'grp', 'par')
local state = f[1]
if not state then return '' end
if state == 'completed' or state == 'failed' or state == 'dead' or state == 'cancelled' then
  return state
end
if state == 'waiting' then
  if redis.call('ZREM', KEYS[4], id) == 0 and redis.call('LREM', KEYS[1], 1, id) == 0 and f[2] then
    local n = redis.call('LREM', KEYS[8] .. f[2], 1, id)
    if n > 0 then redis.call('HINCRBY', KEYS[6], 'parked', -n) end
  end
elseif state == 'delayed' then
  redis.call('ZREM', KEYS[3], id)
elseif state == 'waiting-children' then
  redis.call('ZREM', KEYS[10], id)
elseif state == 'active' then
  -- The worker's ack or failure for it then finds its lease gone and changes nothing.
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', jk, 'lk')
end
local reason = ARGV[3]
if reason == '' then reason = 'cancelled' end
redis.call('HSET', jk, 'state', 'cancelled', 'fin', now, 'err', reason)
redis.call('ZADD', KEYS[5], now, id)
redis.call('HINCRBY', KEYS[6], 'cancelled', 1)
if maxlen > 0 then
  redis.call('XADD', KEYS[9], 'MAXLEN', '~', maxlen, '*', 'e', 'cancelled', 'id', id, 'from', state)
end
-- A cancelled child counts as a failed one for its parent (child_failed.lua).
local parent = f[3]
if parent then
  local dl = ARGV[4]
  if dl == '' then dl = redis.call('HGET', KEYS[6], 'dlq') or '1' end
  local final = dl == '1' and 'dead' or 'failed'
  child_failed(string.sub(KEYS[1], 1, -5), parent, id, reason,
               'child ' .. id .. ' cancelled: ' .. reason, final, now, maxlen)
end
return state
