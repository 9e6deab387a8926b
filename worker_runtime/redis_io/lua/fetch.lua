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
ARGV[9] optional: 1 (default) malformed jobs go to the dead-letter store, 0 to the failed set
Order: priority > 0 (highest first), then the plain LIST, then priority < 0; FIFO within one.
Rate limits keep a sliding log of starts (a ZSET per limit): at most max starts in any
window, across any number of workers. A group over its limit has its jobs parked on its own
LIST (other groups go on); they start first once the group's window allows.
Times are Redis' own clock (TIME).
A malformed job (its key not a hash, 'data' missing, 'att'/'stl' not integers)
is never leased: it goes to the dead-letter store with the reason in 'err', and the fetch goes
on. Every check runs before the job's first write, so no error can stop the script midway.
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
local to_dead = ARGV[9] ~= '0'
-- redis.call's unpack fails above ~8,000 values: bigger batches go in chunks.
local CHUNK = 4000
local function chunked(cmd, key, list, stride)
  for i = 1, #list, CHUNK do
    local last = math.min(i + CHUNK - 1, #list)
    if stride == 2 and (last - i) % 2 == 0 then last = last - 1 end
    redis.call(cmd, key, unpack(list, i, last))
  end
end

-- Validation: what a job hash must hold before a worker may run it. (Bytes that are not
-- UTF-8 are found by the worker, which decodes each job of the reply on its own: a scan for
-- them here would cost every fetch ~20 ns per payload byte.)
local function count_field(name, v)
  if v == false then return 'field ' .. name .. ' is missing' end
  if not string.find(v, '^%d+$') or #v > 15 then
    return 'field ' .. name .. ' is not a count: ' .. string.format('%q', string.sub(v, 1, 40))
  end
end
-- The fields fetch needs {data, att, stl}, or nil and why the job cannot run ('' = no job
-- left: it was removed while it waited, its stale id is dropped).
local function job_fields(jk)
  local f = redis.pcall('HMGET', jk, 'data', 'att', 'stl')
  if f.err then return nil, 'job key is a ' .. redis.call('TYPE', jk).ok .. ', not a hash' end
  if not f[1] then
    if redis.call('EXISTS', jk) == 0 then return nil, '' end
    return nil, 'field data is missing'
  end
  local why = count_field('att', f[2]) or count_field('stl', f[3])
  if why then return nil, why end
  return f
end
-- A malformed job to the dead-letter store (or failed set), its reason in 'err'. A key of
-- another type is moved aside to '<job key>:bad' (kept, not deleted; QueueKeys.set_aside) so
-- the record is a hash.
local function bury(id, why)
  local jk = KEYS[5] .. id
  local kind = redis.call('TYPE', jk).ok
  if kind ~= 'hash' and kind ~= 'none' then redis.call('RENAME', jk, jk .. ':bad') end
  local msg = 'malformed job: ' .. why
  local final = to_dead and 'dead' or 'failed'
  redis.call('HSET', jk, 'state', final, 'err', msg, 'fin', now)
  redis.call('HDEL', jk, 'lk')
  redis.call('ZADD', base .. final, now, id)
  redis.call('HINCRBY', KEYS[7], 'failed', 1)
  -- An event only where the queue keeps them (fetch does not know the stream's length; the
  -- next event of a worker trims it).
  local ev = base .. 'events'
  if redis.call('EXISTS', ev) == 1 then
    redis.call('XADD', ev, '*', 'e', final, 'id', id, 'error', msg)
  end
  -- A flow's child: its parent follows its policy, as for any child failed for good.
  local parent = kind == 'hash' and redis.call('HGET', jk, 'par')
  if parent then
    child_failed(base, parent, id, msg, 'child ' .. id .. ' failed: ' .. msg, final, now, nil)
  end
end

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
  redis.call('ZREM', KEYS[3], unpack(due))
  for _, id in ipairs(due) do
    local jk = KEYS[5] .. id
    local pri = redis.pcall('HGET', jk, 'pri')
    if pri == false and redis.call('EXISTS', jk) == 0 then
      pri = nil  -- removed while it waited: its stale id is dropped
    elseif type(pri) == 'table' then
      bury(id, 'job key is a ' .. redis.call('TYPE', jk).ok .. ', not a hash')
    elseif pri ~= nil then
      redis.call('HSET', jk, 'state', 'waiting')
      -- Only an integer priority counts ('inf' or 'nan' would make the score fail).
      pri = pri and string.find(pri, '^-?%d+$') and #pri <= 8 and tonumber(pri)
      if pri then
        local seq = redis.call('HINCRBY', KEYS[7], 'pseq', 1) % P32
        redis.call('ZADD', KEYS[6], string.format('%.0f', -pri * P32 + seq), id)
      else
        plain[#plain + 1] = id
      end
    end
  end
  if #plain > 0 then redis.call('RPUSH', KEYS[1], unpack(plain)) end
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
  chunked('ZADD', key, args, 2)
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
          local f, why = job_fields(KEYS[5] .. id)
          if f then group_lease(st, id, f) elseif why ~= '' then bury(id, why) end
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
  if #ids > 0 then
    chunked('ZREM', KEYS[6], ids)
    prio_n = prio_n - #ids
  end
  if #ids < n then
    local more = redis.call('LPOP', KEYS[1], n - #ids)
    if more then for _, id in ipairs(more) do ids[#ids + 1] = id end end
  end
  if #ids < n and prio_n > 0 then
    local low = redis.call('ZRANGE', KEYS[6], 0, n - #ids - 1)
    if #low > 0 then
      chunked('ZREM', KEYS[6], low)
      prio_n = prio_n - #low
      for _, id in ipairs(low) do ids[#ids + 1] = id end
    end
  end
  return ids
end

-- A job's group is a top-level field of its payload. A small payload is decoded (cjson, in C);
-- a large one is not: its top level is walked instead, jumping over string contents and
-- nested values with string.find, and only the field's own value is decoded. One call stops
-- once it has spent GROUP_SCAN_BUDGET (in bytes: each payload read, each decoded, what a walk
-- scans with a character class, 1/64 of what it jumps over, 16 per step), at least one job, so
-- a backlog of large payloads cannot hold Redis; each job is looked at once (a parked one
-- keeps its group in 'grp').
local GROUP_DECODE_MAX = 65536
local GROUP_SCAN_BUDGET = 4194304
local spent = 0
local function scalar(v)
  if v ~= nil and v ~= cjson.null and type(v) ~= 'table' then return tostring(v) end
  return nil
end
-- Where the JSON string opening at i ends. A plain find (memchr) jumps over its contents: a
-- character class scans ~1,000 times slower.
local function string_end(data, i)
  local k = i + 1
  while true do
    local e = string.find(data, '"', k, true)
    if not e then return nil end
    spent = spent + math.floor((e - k) / 64)
    local b = e - 1
    while string.byte(data, b) == 92 do b = b - 1 end
    if (e - 1 - b) % 2 == 0 then return e end  -- not escaped
    k = e + 1
  end
end
-- One JSON value's text starting at i (a string, or a literal up to the next delimiter).
local function value_at(data, i)
  local c = string.byte(data, i)
  if c == 34 then
    local e = string_end(data, i)
    if not e then return nil end
    return string.sub(data, i, e), e
  end
  if c == 123 or c == 91 then return nil end  -- an object or array is no group
  local e = (string.find(data, '[,}%]%s]', i) or (#data + 1)) - 1
  return string.sub(data, i, e), e
end
local function top_level_field(data, name)
  local i = string.find(data, '%S')
  if not i or string.byte(data, i) ~= 123 then return nil end
  local depth, want_key, pos, found = 1, true, i + 1, nil
  while true do
    local j = string.find(data, '["{}%[%],:]', pos)
    if not j then return found end
    spent = spent + 16 + j - pos
    local c = string.byte(data, j)
    if c == 34 then
      local e = string_end(data, j)
      if not e then return found end
      if depth == 1 and want_key then
        local text = string.sub(data, j, e)  -- a key: short (a long value is never copied)
        local key = string.sub(text, 2, -2)
        if string.find(key, '\\', 1, true) then
          local ok, t = pcall(cjson.decode, '[' .. text .. ']')
          key = ok and t[1] or ''
        end
        if key == name then
          local v = string.find(data, '[^%s:]', string.find(data, ':', e + 1, true) or e + 1)
          local vtext = v and value_at(data, v)
          local ok, t = pcall(cjson.decode, '[' .. (vtext or 'null') .. ']')
          found = ok and scalar(t[1]) or nil  -- the last one wins, as when decoding it all
        end
      end
      pos = e + 1
    elseif c == 123 or c == 91 then
      depth, pos = depth + 1, j + 1
    elseif c == 125 or c == 93 then
      depth, pos = depth - 1, j + 1
      if depth == 0 then return found end
    else
      if depth == 1 then want_key = c == 44 end
      pos = j + 1
    end
  end
end
local function group_of(data)
  spent = spent + #data  -- reading it into Lua (HMGET) costs ~6 ms per MB already
  if #data > GROUP_DECODE_MAX then return top_level_field(data, gfield) end
  spent = spent + #data  -- decoding it, about as much again
  local ok, obj = pcall(cjson.decode, data)
  if ok and type(obj) == 'table' then return scalar(obj[gfield]) end
  return nil
end

-- Bounded scan: parking limited groups' jobs costs work, so one call looks at 1000 at most.
local scanned = 0
local put_back = {}  -- taken but not looked at (scan budget spent): back to the head
while leased < budget and scanned < 1000 and spent < GROUP_SCAN_BUDGET do
  local ids = take(budget - leased)
  if #ids == 0 then break end
  scanned = scanned + #ids
  for _, id in ipairs(ids) do
    local jk = KEYS[5] .. id
    -- A job removed while it waited has no hash left: its stale id is dropped ('').
    local f, why = nil, ''
    if spent < GROUP_SCAN_BUDGET then f, why = job_fields(jk) end
    if spent >= GROUP_SCAN_BUDGET then
      put_back[#put_back + 1] = id
    elseif not f then
      if why ~= '' then bury(id, why) end
    else
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
-- Back in the order taken (a priority keeps its score: only plain ids need the list head).
for i = #put_back, 1, -1 do
  local id = put_back[i]
  local pri = redis.call('HGET', KEYS[5] .. id, 'pri')
  pri = pri and string.find(pri, '^-?%d+$') and #pri <= 8 and tonumber(pri)
  if pri then
    redis.call('ZADD', KEYS[6], string.format('%.0f', -pri * P32), id)
    prio_n = prio_n + 1
  else
    redis.call('LPUSH', KEYS[1], id)
  end
end

local wait = -1
local function sooner(ms) if wait < 0 or ms < wait then wait = ms end end
if qmax > 0 and leased > 0 then record(KEYS[8], qper, started) end
local q_wait = nil  -- set while the queue-wide window is full
if q_limited and leased >= budget then
  q_wait = wait_ms(KEYS[8], qmax, qper)
  sooner(q_wait)
end
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
-- While the queue-wide window is full nothing can start, however soon a delayed job is due or
-- a parked group's window opens: look again when it opens (an earlier answer, 0 for a group
-- whose window already opened, would have an idle worker call again at once, in a loop).
if q_wait and wait < q_wait then wait = q_wait end
if leased > 0 then redis.call('SET', receipt, cjson.encode(leased_ids), 'PX', tonumber(ARGV[1])) end
out[1] = wait
return out
