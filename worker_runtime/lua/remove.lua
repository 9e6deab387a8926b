--[[ remove: delete one job that is not running.
KEYS[1] wait       LIST
KEYS[2] active     ZSET
KEYS[3] delayed    ZSET
KEYS[4] completed  ZSET
KEYS[5] failed     ZSET
KEYS[6] dead       ZSET
KEYS[7] job prefix
ARGV[1] job id
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
redis.call('DEL', jk)
return 1
