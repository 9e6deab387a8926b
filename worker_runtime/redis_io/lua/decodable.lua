--[[ decodable: make a leased job whose id or payload is not UTF-8 readable before it is
dead-lettered (every reader of Redis decodes ids and fields), keeping its lease. One script so
that a retry after a dropped connection is harmless: the second run finds the job moved.
KEYS[1] active ZSET
KEYS[2] the job's hash under its raw id (bytes that may not be UTF-8)
KEYS[3] the job's hash under its shown id (the raw bytes that are not UTF-8 as \xNN)
ARGV[1] raw id
ARGV[2] shown id (equal to ARGV[1] when only the payload is not UTF-8)
ARGV[3] the payload, decoded the same way
ARGV[4] lease token of the run that found it
Only while that lease holds (the job hash's 'lk', the raw id in 'active'): a job reclaimed
meanwhile is another run's, and moving it would leave its id in 'wait' without a hash. A hash
already under the shown id (another job's) is never overwritten.
Returns: 1 if the job was rewritten, 0 if not (already done, lease lost, or gone). ]]
if redis.call('TYPE', KEYS[2]).ok ~= 'hash' or redis.call('HGET', KEYS[2], 'lk') ~= ARGV[4]
    or not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
if ARGV[1] ~= ARGV[2] and redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('HSET', KEYS[2], 'data', ARGV[3])
if ARGV[1] == ARGV[2] then return 1 end
-- The shown id takes over the lease (reclaim requeues it if the lease lapses).
redis.call('ZADD', KEYS[1], redis.call('ZSCORE', KEYS[1], ARGV[1]), ARGV[2])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('RENAME', KEYS[2], KEYS[3])
return 1
