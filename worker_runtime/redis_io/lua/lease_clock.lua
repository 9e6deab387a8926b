--[[ lease_clock: not an operation but a function prepended (scripts.py) to the scripts that
set or judge lease deadlines: fetch, extend and reclaim.
lease_tick(clock, active, now): every call of those scripts ticks the queue's lease clock
(STRING: Redis ms of the last tick). Workers tick it every RECLAIM_INTERVAL_SECONDS (0.5 s,
leases.py) at least, so a longer gap means no worker reached Redis: Redis itself was frozen
(DEBUG SLEEP, a stopped process, a slow fork, a failover, a partition from every worker).
Time nobody could renew in does not count against leases: beyond MAX_STEP ms, the gap is
added to every lease deadline in `active`, so after a freeze of any length a live worker
still finds its leases held and renews them, while a lease whose worker died (no renewal
while others tick) expires on time. A clock that went back (a failover to a replica whose
clock is behind) shifts nothing. ]]
local LEASE_CLOCK_MAX_STEP_MS = 1000
local function lease_tick(clock, active, now)
  -- pcall: a clock key of another type (garbage) must not stop every fetch and renewal;
  -- the SET below replaces it.
  local v = redis.pcall('GET', clock)
  local last = type(v) == 'string' and tonumber(v) or nil
  redis.call('SET', clock, now)
  if last and now - last > LEASE_CLOCK_MAX_STEP_MS then
    local gap = now - last - LEASE_CLOCK_MAX_STEP_MS
    for _, id in ipairs(redis.call('ZRANGE', active, 0, -1)) do
      redis.call('ZINCRBY', active, gap, id)
    end
  end
end
