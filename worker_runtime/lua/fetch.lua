--[[ fetch: lease up to N ready jobs to one worker, promoting due delayed jobs first.
KEYS[1]  wait      LIST  ready ids, priority 0
KEYS[2]  active    ZSET  id -> lease deadline ms
KEYS[3]  delayed   ZSET  id -> due ms
KEYS[4]  marker    ZSET
KEYS[5]  job prefix
KEYS[6..13] optional: derived from KEYS[1] ('<base>:wait', same hash tag) when absent, which
is how workers call it (fewer keys keep the plain path's call as small as before):
KEYS[6]  prio      ZSET  id -> -priority * 2^32 + sequence
KEYS[7]  stats     HASH  ('pseq': the priority sequence)
KEYS[8]  rate      ZSET  queue-wide limiter: recent starts
KEYS[9]  group limiter prefix (ZSET of recent starts per group)
KEYS[10] group parked prefix (LIST per group)
KEYS[11] limited groups ZSET group -> ms its parked jobs may start
KEYS[12] lease clock STRING (lease_clock.lua)
KEYS[13] fetch receipts prefix (+ token: STRING, JSON ids this call leased, kept one lease)
ARGV[1] lease (ms)
ARGV[2] max jobs
ARGV[3] lease token: new for every call (the worker's id, then a sequence number), so each
        lease of a job has its own token and a stale run of it can change nothing. A call
        with a token that already leased jobs is a retry whose reply was lost (a timeout,
        a dropped connection): it returns the jobs still leased under that token, no others.
ARGV[4..8] optional (absent = no limits):
ARGV[4] queue rate limit: max jobs per window, 0 = none
ARGV[5] queue rate window (ms)
ARGV[6] group field: payload field naming a job's group, '' = no group limit
ARGV[7] group rate limit: max jobs per window per group
ARGV[8] group rate window (ms)
Order: priority > 0 (highest first), then the plain LIST, then priority < 0; FIFO within one.
Rate limits keep a sliding log of starts (a ZSET per limit): at most max starts in any
window, across any number of workers. A group over its limit has its jobs parked on its own
LIST (other groups go on); they start first once the group's window allows.
Times are Redis' own clock (TIME).
Returns: {ms until the worker should look again (next due job, rate window) or -1,
          id, payload, attempts made, stalls, id, ...} ]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local deadline = now + tonumber(ARGV[1])
local want = tonumber(ARGV[2])
local token = ARGV[3]
-- Names as in core/keys.py.
local base = string.sub(KEYS[1], 1, -5)
for i, suffix in ipairs({'prio', 'stats', 'rate', 'grate:', 'gpark:', 'glimited', 'lclock', 'fetched:'}) do
  KEYS[5 + i] = KEYS[5 + i] or (base .. suffix)
end
local qmax, qper = tonumber(ARGV[4] or 0), tonumber(ARGV[5] or 1000)
local gfield, gmax, gper = ARGV[6] or '', tonumber(ARGV[7] or 0), tonumber(ARGV[8] or 1000)
local P32 = 4294967296
lease_tick(KEYS[12], KEYS[2], now)

local receipt = KEYS[13] .. token
local prior = redis.call('GET', receipt)
if prior then
  local again = {0}
  for _, id in ipairs(cjson.decode(prior)) do
    local f = redis.call('HMGET', KEYS[5] .. id, 'lk', 'data', 'att', 'stl')
    if f[1] == token and redis.call('ZSCORE', KEYS[2], id) then
      redis.call('ZADD', KEYS[2], 'XX', deadline, id)
      again[#again + 1] = id
      again[#again + 1] = f[2]
      again[#again + 1] = f[3]
      again[#again + 1] = f[4]
    end
  end
  return again
end

local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 1000)
if #due > 0 then
  local plain = {}
  for _, id in ipairs(due) do
    local jk = KEYS[5] .. id
    redis.call('HSET', jk, 'state', 'waiting')
    local pri = tonumber(redis.call('HGET', jk, 'pri'))
    if pri then
      local seq = redis.call('HINCRBY', KEYS[7], 'pseq', 1) % P32
      redis.call('ZADD', KEYS[6], string.format('%.0f', -pri * P32 + seq), id)
    else
      plain[#plain + 1] = id
    end
  end
  if #plain > 0 then redis.call('RPUSH', KEYS[1], unpack(plain)) end
  redis.call('ZREM', KEYS[3], unpack(due))
end

-- Rate limits are a sliding log: a ZSET of the starts in the last window (member
-- '<ms>:<id>', score ms), so "at most max starts in any window" holds exactly.
local function allowance(key, limit, per)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - per)
  local n = limit - redis.call('ZCARD', key)
  if n < 0 then n = 0 end
  return n
end
local function record(key, per, ids)
  local args = {}
  for _, id in ipairs(ids) do
    args[#args + 1] = now
    args[#args + 1] = now .. ':' .. id
  end
  redis.call('ZADD', key, unpack(args))
  redis.call('PEXPIRE', key, per + 1000)
end
-- ms from now until one more start fits: when the start that must leave the window does.
local function wait_ms(key, limit, per)
  local count = redis.call('ZCARD', key)
  if count < limit then return 0 end
  local e = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
  return math.max(tonumber(e[2]) + per - now, 1)
end

local budget = want
local q_limited = false
if qmax > 0 then
  local n = allowance(KEYS[8], qmax, qper)
  if n < budget then budget = n; q_limited = true end
end

local out = {-1}
local leased = 0
local started = {}
local leased_ids = {}
local function lease(id, f)
  redis.call('HSET', KEYS[5] .. id, 'state', 'active', 'lk', token, 'st', now)
  redis.call('ZADD', KEYS[2], deadline, id)
  leased_ids[#leased_ids + 1] = id
  out[#out + 1] = id
  out[#out + 1] = f[1]
  out[#out + 1] = f[2]
  out[#out + 1] = f[3]
  leased = leased + 1
  if qmax > 0 then started[leased] = id end
end

-- Groups touched in this call: {n allowed, ids started, parked (jobs still parked)}
local groups = {}
local parked_delta = 0  -- change in the 'parked' count (stats), so counts() need not scan
local function group_state(g)
  local st = groups[g]
  if not st then
    local parked = redis.call('LLEN', KEYS[10] .. g) > 0
    local n = budget  -- no group limit (any more): parked jobs go at the pace of the rest
    if gfield ~= '' then n = allowance(KEYS[9] .. g, gmax, gper) end
    st = {n, {}, parked}
    groups[g] = st
  end
  return st
end
local function group_lease(st, id, f)
  lease(id, f)
  st[2][#st[2] + 1] = id
end

-- Jobs parked under a group limit that is no longer configured must not stay parked forever.
local orphans = gfield == '' and budget > 0 and redis.call('ZCARD', KEYS[11]) > 0
if (gfield ~= '' or orphans) and budget > 0 then
  -- Parked jobs of groups whose window opened go first: they were taken before the rest.
  local upto = now
  if gfield == '' then upto = '+inf' end
  local open = redis.call('ZRANGEBYSCORE', KEYS[11], '-inf', upto, 'LIMIT', 0, 100)
  for _, g in ipairs(open) do
    if leased >= budget then break end
    local st = group_state(g)
    local n = math.min(st[1], budget - leased)
    if n > 0 then
      local ids = redis.call('LPOP', KEYS[10] .. g, n)
      if ids then
        parked_delta = parked_delta - #ids
        for _, id in ipairs(ids) do
          local f = redis.call('HMGET', KEYS[5] .. id, 'data', 'att', 'stl')
          if f[1] then group_lease(st, id, f) end
        end
      end
    end
    st[3] = redis.call('LLEN', KEYS[10] .. g) > 0
  end
end

local prio_n = redis.call('ZCARD', KEYS[6])
local function take(n)
  if prio_n == 0 then return redis.call('LPOP', KEYS[1], n) or {} end
  local ids = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', '(0', 'LIMIT', 0, n)
  if #ids > 0 then prio_n = prio_n - redis.call('ZREM', KEYS[6], unpack(ids)) end
  if #ids < n then
    local more = redis.call('LPOP', KEYS[1], n - #ids)
    if more then for _, id in ipairs(more) do ids[#ids + 1] = id end end
  end
  if #ids < n and prio_n > 0 then
    local low = redis.call('ZRANGE', KEYS[6], 0, n - #ids - 1)
    if #low > 0 then
      prio_n = prio_n - redis.call('ZREM', KEYS[6], unpack(low))
      for _, id in ipairs(low) do ids[#ids + 1] = id end
    end
  end
  return ids
end

local function group_of(data)
  local ok, obj = pcall(cjson.decode, data)
  if ok and type(obj) == 'table' then
    local v = obj[gfield]
    if v ~= nil and v ~= cjson.null and type(v) ~= 'table' then return tostring(v) end
  end
  return nil
end

-- Bounded scan: parking limited groups' jobs costs work, so one call looks at 1000 at most.
local scanned = 0
while leased < budget and scanned < 1000 do
  local ids = take(budget - leased)
  if #ids == 0 then break end
  scanned = scanned + #ids
  for _, id in ipairs(ids) do
    local jk = KEYS[5] .. id
    -- A job removed while it waited has no hash left: drop its stale id.
    local f = redis.call('HMGET', jk, 'data', 'att', 'stl')
    if f[1] then
      local g = nil
      if gfield ~= '' then g = group_of(f[1]) end
      if g == nil then
        lease(id, f)
      else
        local st = group_state(g)
        if not st[3] and #st[2] < st[1] then
          group_lease(st, id, f)
        else
          redis.call('RPUSH', KEYS[10] .. g, id)
          redis.call('HSET', jk, 'grp', g)
          parked_delta = parked_delta + 1
          st[3] = true
        end
      end
    end
  end
  -- Without group limits nothing is parked: one pass takes all there is.
  if gfield == '' then break end
end

local wait = -1
local function sooner(ms) if wait < 0 or ms < wait then wait = ms end end
if qmax > 0 and leased > 0 then record(KEYS[8], qper, started) end
if q_limited and leased >= budget then sooner(wait_ms(KEYS[8], qmax, qper)) end
if parked_delta ~= 0 then redis.call('HINCRBY', KEYS[7], 'parked', parked_delta) end
for g, st in pairs(groups) do
  if #st[2] > 0 and gfield ~= '' then record(KEYS[9] .. g, gper, st[2]) end
  if st[3] and gfield == '' then
    redis.call('ZADD', KEYS[11], now, g)
  elseif st[3] then
    redis.call('ZADD', KEYS[11], now + wait_ms(KEYS[9] .. g, gmax, gper), g)
  else
    redis.call('ZREM', KEYS[11], g)
  end
end
-- Wake another idle worker when work remains (not while the queue-wide limit holds it back).
if not (q_limited and leased >= budget) then
  if redis.call('LLEN', KEYS[1]) > 0 or prio_n > 0 then redis.call('ZADD', KEYS[4], 0, 'w') end
end
local nxt = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
if nxt[2] then sooner(math.max(tonumber(nxt[2]) - now, 0)) end
if gfield ~= '' or orphans then
  local g = redis.call('ZRANGE', KEYS[11], 0, 0, 'WITHSCORES')
  if g[2] then sooner(math.max(tonumber(g[2]) - now, 0)) end
end
if leased > 0 then redis.call('SET', receipt, cjson.encode(leased_ids), 'PX', tonumber(ARGV[1])) end
out[1] = wait
return out
