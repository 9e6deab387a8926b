--[[ remove: delete one job that is not running.
KEYS[1]  wait       LIST
KEYS[2]  active     ZSET
KEYS[3]  delayed    ZSET
KEYS[4]  completed  ZSET
KEYS[5]  failed     ZSET
KEYS[6]  dead       ZSET
KEYS[7]  job prefix
KEYS[8]  prio       ZSET
KEYS[9]  cancelled  ZSET
KEYS[10] group parked prefix (LIST per group)
KEYS[11] stats      HASH ('parked' count)
KEYS[12] flows      ZSET
KEYS[13] children prefix
KEYS[14] child failures prefix
KEYS[15] marker     ZSET
ARGV[1] job id
A flow's child that its parent still waits for is recorded as a child failure ('removed') and
no longer awaited: the parent runs once the others have finished.
Returns: 1 removed, 0 no such job, -1 the job is active (leased) and was left alone. ]]
local id = ARGV[1]
local jk = KEYS[7] .. id
if redis.call('EXISTS', jk) == 0 then return 0 end
if redis.call('ZSCORE', KEYS[2], id) then return -1 end
redis.call('LREM', KEYS[1], 0, id)
redis.call('ZREM', KEYS[3], id)
redis.call('ZREM', KEYS[4], id)
redis.call('ZREM', KEYS[5], id)
redis.call('ZREM', KEYS[6], id)
redis.call('ZREM', KEYS[8], id)
redis.call('ZREM', KEYS[9], id)
redis.call('ZREM', KEYS[12], id)
local g = redis.call('HGET', jk, 'grp')
if g then
  local n = redis.call('LREM', KEYS[10] .. g, 0, id)
  if n > 0 then redis.call('HINCRBY', KEYS[11], 'parked', -n) end
end
local f = redis.call('HMGET', jk, 'par', 'state')
local parent = f[1]
if parent and f[2] ~= 'completed' and redis.call('HEXISTS', KEYS[14] .. parent, id) == 0 then
  local pk = KEYS[7] .. parent
  local p = redis.call('HMGET', pk, 'state', 'pri')
  if p[1] == 'waiting-children' then
    redis.call('HSET', KEYS[14] .. parent, id, 'removed')
    if redis.call('HINCRBY', pk, 'pend', -1) <= 0 then
      parent_ready(string.sub(KEYS[1], 1, -5), parent, tonumber(p[2]))  -- child_failed.lua
    end
  end
end
redis.call('DEL', jk, KEYS[13] .. id, KEYS[14] .. id)
return 1
