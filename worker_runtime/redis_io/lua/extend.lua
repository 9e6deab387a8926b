--[[ extend: renew the leases a worker holds, so live jobs are not reclaimed as stalled.
KEYS[1] active  ZSET
KEYS[2] job prefix
ARGV[1] lease (ms) from now (Redis' clock)
ARGV[2] lease token
ARGV[3..] job ids
Returns: {ids whose lease this token no longer holds (reclaimed, removed or cancelled),
          the subset of those that were cancelled (their worker stops running them)} ]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local deadline = now + tonumber(ARGV[1])
local lost, cancelled = {}, {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local f = redis.call('HMGET', KEYS[2] .. id, 'lk', 'state')
  if f[1] == ARGV[2] and redis.call('ZSCORE', KEYS[1], id) then
    redis.call('ZADD', KEYS[1], 'XX', deadline, id)
  else
    lost[#lost + 1] = id
    if f[2] == 'cancelled' then cancelled[#cancelled + 1] = id end
  end
end
return {lost, cancelled}
