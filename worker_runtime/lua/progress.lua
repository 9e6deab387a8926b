--[[ progress: store a running job's progress, only while this worker holds its lease.
KEYS[1] job hash
ARGV[1] lease token
ARGV[2] progress JSON
Returns: 1 stored, 0 lease lost. ]]
if redis.call('HGET', KEYS[1], 'lk') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'prog', ARGV[2])
return 1
