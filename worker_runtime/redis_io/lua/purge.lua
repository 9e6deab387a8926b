--[[ purge: delete dead-lettered jobs for good.
KEYS[1] dead  ZSET
KEYS[2] job prefix
ARGV[1..] job ids
Returns: number of jobs deleted. ]]
local n = 0
for i = 1, #ARGV do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    redis.call('DEL', KEYS[2] .. ARGV[i])
    n = n + 1
  end
end
return n
