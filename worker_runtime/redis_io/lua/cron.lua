--[[ cron: enqueue one repeatable job for one tick, once however many workers try.
KEYS[1] wait     LIST
KEYS[2] marker   ZSET
KEYS[3] stats    HASH
KEYS[4] job prefix
KEYS[5] prio     ZSET
KEYS[6] cron     HASH name -> last tick enqueued (epoch seconds)
ARGV[1] cron name
ARGV[2] tick (epoch seconds)
ARGV[3] job id (cron:<name>:<tick>)
ARGV[4] payload JSON
ARGV[5] priority (0 = none)
The last tick is kept apart from the job, so a job already completed and deleted is not
enqueued again by a late worker.
Returns: 1 enqueued, 0 this tick (or a later one) was already enqueued. ]]
local tick = tonumber(ARGV[2])
local last = tonumber(redis.call('HGET', KEYS[6], ARGV[1]))
if last and last >= tick then return 0 end
redis.call('HSET', KEYS[6], ARGV[1], ARGV[2])
local id = ARGV[3]
local jk = KEYS[4] .. id
if redis.call('EXISTS', jk) == 1 then return 0 end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('HSET', jk, 'data', ARGV[4], 'ts', now, 'att', 0, 'stl', 0, 'state', 'waiting')
local pri = tonumber(ARGV[5])
if pri ~= 0 then
  redis.call('HSET', jk, 'pri', pri)
  local seq = redis.call('HINCRBY', KEYS[3], 'pseq', 1) % 4294967296
  redis.call('ZADD', KEYS[5], string.format('%.0f', -pri * 4294967296 + seq), id)
else
  redis.call('RPUSH', KEYS[1], id)
end
redis.call('HINCRBY', KEYS[3], 'enqueued', 1)
redis.call('ZADD', KEYS[2], 0, 'w')
return 1
