--[[ complete: acknowledge finished jobs in one batch.
KEYS[1]  active     ZSET
KEYS[2]  completed  ZSET id -> finish ms (retained records)
KEYS[3]  stats      HASH (completed, busy_ms)
KEYS[4]  job prefix ('<base>:job:')
Derived from the job prefix, in the same hash tag, and touched only when needed (fewer keys
keep the hot path's call as small as before): '<base>:events' STREAM, and for flows
'<base>:wait' LIST, ':prio' ZSET, ':marker' ZSET, ':flows' ZSET, ':kids:<parent>' HASH
(child id -> result JSON), ':kidfail:<parent>' HASH. (Names as in core/keys.py.)
ARGV[1] keep completed: -1 keep all, 0 delete at once, N keep the newest N
ARGV[2] events stream length (approximate MAXLEN), 0 = no events
ARGV[3..] triples: id, lease token (fetch.lua: one per lease), result JSON ('' for none)
One 'completed' event per call lists the batch's ids (one XADD per batch, not per job).
Returns: {refused, cancelled}: the positions (0-based, in triples) of the jobs NOT acknowledged,
usually none, and of those the ones cancelled meanwhile (Queue.cancel). A job whose lease was
lost is skipped (another lease of it may be running); the worker tells its observers only of
the jobs acknowledged. A job this lease acked already (the batch was sent
again after a lost reply) counts as acknowledged, unless its record was deleted at once
(keep completed 0): then it is reported as refused. ]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local keep = tonumber(ARGV[1])
local maxlen = tonumber(ARGV[2])
local base = string.sub(KEYS[4], 1, -5)
local n, busy = 0, 0
local done = {}
-- Children's results outlive their parent's record by a day at most.
local KIDS_TTL_MS = 86400000
local function count(v) return v and string.find(v, '^%d+$') and #v <= 15 and tonumber(v) end
local function int(v) return v and string.find(v, '^-?%d+$') and #v <= 8 and tonumber(v) end
-- First every read and check, then the writes: a job hash with garbage in it (or a key of
-- another type) must not stop the script after part of the batch was written, which left
-- the counters low and the rest of the batch to be retried for ever.
local acks, refused, cancelled = {}, {}, {}
for i = 3, #ARGV, 3 do
  local id = ARGV[i]
  local jk = KEYS[4] .. id
  local f = redis.pcall('HMGET', jk, 'lk', 'st', 'par', 'pend', 'att', 'state')
  if f.err or f[1] ~= ARGV[i + 1] then
    refused[#refused + 1] = (i - 3) / 3
    if not f.err and f[6] == 'cancelled' then cancelled[#cancelled + 1] = (i - 3) / 3 end
  elseif not redis.call('ZSCORE', KEYS[1], id) then
    -- Acked by this very lease already (the token stays on a completed job): a batch sent
    -- again after its reply was lost. Nothing to write, and not refused.
    if f[6] ~= 'completed' then refused[#refused + 1] = (i - 3) / 3 end
  else
    local parent = f[3]
    if parent then
      -- A parent whose hash is broken cannot take the result: the child still completes.
      local p = redis.pcall('HMGET', KEYS[4] .. parent, 'pend')
      if p.err or not int(p[1]) then parent = nil end
    end
    -- A parent's results record of another type cannot take this one: the parent hears of
    -- it as of a failed child (child_failed.lua) instead of the script erroring midway.
    local kt = parent and redis.call('TYPE', base .. 'kids:' .. parent).ok
    local lost = kt and kt ~= 'hash' and kt ~= 'none'
    acks[#acks + 1] = {pos = (i - 3) / 3, id = id, jk = jk, st = count(f[2]), parent = parent,
                       kids = f[4], att = count(f[5]), res = ARGV[i + 2], lost = lost}
  end
end
for _, a in ipairs(acks) do
  local id, jk = a.id, a.jk
  if redis.call('ZREM', KEYS[1], id) == 0 then
    refused[#refused + 1] = a.pos  -- an id twice in one batch is acked once
  else
    n = n + 1
    if maxlen > 0 then done[n] = id end
    if a.st then busy = busy + (now - a.st) end
    if keep == 0 then
      redis.call('DEL', jk)
    else
      -- An attempt count that is not a number is replaced, not incremented (which would fail).
      -- The lease token stays ('lk'): a repeat of this ack is recognised as such (above).
      redis.call('HSET', jk, 'state', 'completed', 'res', a.res, 'fin', now, 'att', (a.att or 0) + 1)
      redis.call('ZADD', KEYS[2], now, id)
    end
    if a.kids then
      -- A parent finished: its children's results are no longer needed for long.
      redis.call('PEXPIRE', base .. 'kids:' .. id, KIDS_TTL_MS)
      redis.call('PEXPIRE', base .. 'kidfail:' .. id, KIDS_TTL_MS)
    end
    if a.lost then
      local why = 'its result could not be kept (the parent\'s results record is not a hash)'
      local final = (redis.call('HGET', KEYS[3], 'dlq') or '1') == '1' and 'dead' or 'failed'
      child_failed(base, a.parent, id, why, 'child ' .. id .. ' completed but ' .. why, final,
                   now, maxlen)
    elseif a.parent then
      -- A flow's child: hand the result to the parent; the last child readies it.
      local parent = a.parent
      local pk = KEYS[4] .. parent
      local res = a.res
      if res == '' then res = 'null' end
      local p = redis.call('HMGET', pk, 'state', 'pri')
      if p[1] == 'waiting-children' then
        redis.call('HSET', base .. 'kids:' .. parent, id, res)
        if redis.call('HINCRBY', pk, 'pend', -1) <= 0 then
          parent_ready(base, parent, int(p[2]))  -- child_failed.lua
        end
      end
    end
  end
end
if n > 0 then
  redis.call('HINCRBY', KEYS[3], 'completed', n)
  -- Summed run time (lease start to ack) lets observers derive the mean job duration.
  redis.call('HINCRBY', KEYS[3], 'busy_ms', busy)
  if maxlen > 0 then
    redis.call('XADD', base .. 'events', 'MAXLEN', '~', maxlen, '*', 'e', 'completed', 'ids', cjson.encode(done))
  end
end
if keep > 0 then
  local excess = redis.call('ZCARD', KEYS[2]) - keep
  if excess > 0 then
    local old = redis.call('ZRANGE', KEYS[2], 0, excess - 1)
    for _, id in ipairs(old) do redis.call('DEL', KEYS[4] .. id) end
    redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
  end
end
return {refused, cancelled}
