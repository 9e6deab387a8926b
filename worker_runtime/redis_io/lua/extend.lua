--[[ extend: renew the leases a worker holds, so live jobs are not reclaimed as stalled.
KEYS[1] active  ZSET
KEYS[2] job prefix
KEYS[3] lease clock STRING (lease_clock.lua)
ARGV[1] lease (ms) from now (Redis' clock)
ARGV[2..] pairs: job id, lease token (each lease has its own token: fetch.lua)
Returns: {leases this worker no longer holds (reclaimed, removed or cancelled), as flat
          id, token pairs; the subset of those whose job was cancelled}
The worker stops running a lost lease's job and never acknowledges it. ]]
local lease = tonumber(ARGV[1])
if not lease or #ARGV % 2 ~= 1 then
  return redis.error_reply('extend: ARGV must be a lease in ms, then id, token pairs')
end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
lease_tick(KEYS[3], KEYS[1], now)
local deadline = now + lease
local lost, cancelled = {}, {}
for i = 2, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  -- pcall: a job key of another type (overwritten by something else) loses its own lease,
  -- not every lease of the batch.
  local f = redis.pcall('HMGET', KEYS[2] .. id, 'lk', 'state')
  if f.err then f = {} end
  if f[1] == token and redis.call('ZSCORE', KEYS[1], id) then
    redis.call('ZADD', KEYS[1], 'XX', deadline, id)
  else
    lost[#lost + 1] = id
    lost[#lost + 1] = token
    if f[2] == 'cancelled' then
      cancelled[#cancelled + 1] = id
      cancelled[#cancelled + 1] = token
    end
  end
end
return {lost, cancelled}
