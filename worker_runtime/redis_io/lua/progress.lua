--[[ progress: store a running job's progress, only while this worker holds its lease.
KEYS[1] job hash
KEYS[2] events  STREAM (same hash tag)
ARGV[1] lease token
ARGV[2] progress JSON
ARGV[3] events stream length (approximate MAXLEN), 0 = no events
ARGV[4] job id (for the event)
Returns: 1 stored, 0 lease lost. ]]
-- The token stays on a completed job (complete.lua): only an active run may report.
local f = redis.call('HMGET', KEYS[1], 'lk', 'state')
if f[1] ~= ARGV[1] or f[2] ~= 'active' then return 0 end
redis.call('HSET', KEYS[1], 'prog', ARGV[2])
local maxlen = tonumber(ARGV[3] or 0)
if maxlen > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', 'e', 'progress', 'id', ARGV[4], 'progress', ARGV[2])
end
return 1
