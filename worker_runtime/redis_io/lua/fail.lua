--[[ fail: record one failed attempt, then retry, dead-letter or fail the job.
KEYS[1]  active   ZSET
KEYS[2]  wait     LIST
KEYS[3]  delayed  ZSET
KEYS[4]  dead     ZSET id -> ms (dead-letter store)
KEYS[5]  failed   ZSET id -> ms (final failures kept when dead-lettering is off)
KEYS[6]  stats    HASH
KEYS[7]  marker   ZSET
KEYS[8]  job prefix
KEYS[9]  prio     ZSET (ready jobs with a priority)
KEYS[10] events   STREAM
KEYS[11] flows    ZSET parents waiting for children
KEYS[12] child failures prefix (HASH per parent: child id -> error)
ARGV[1] id
ARGV[2] lease token
ARGV[3] action: 'retry' | 'dead' | 'fail'
ARGV[4] retry delay (ms)
ARGV[5] error message
ARGV[6] traceback
ARGV[7] attempt record (JSON object appended to the history; finished_at is set here)
ARGV[8] events stream length (approximate MAXLEN), 0 = no events
Returns: 1 applied (also when this lease's failure was recorded already: a call sent again
after its reply was lost), 0 lease lost (another worker owns the job now). ]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local id, token = ARGV[1], ARGV[2]
local maxlen = tonumber(ARGV[8] or 0)
-- Callers of the older, shorter form: derive the added keys from KEYS[2] ('<base>:wait').
for _, k in ipairs({{9, 'prio'}, {10, 'events'}, {11, 'flows'}, {12, 'kidfail:'}}) do
  KEYS[k[1]] = KEYS[k[1]] or (string.sub(KEYS[2], 1, -5) .. k[2])
end
local jk = KEYS[8] .. id
local P32 = 4294967296
local function count(v) return v and string.find(v, '^%d+$') and #v <= 15 and tonumber(v) end
local function int(v) return v and string.find(v, '^-?%d+$') and #v <= 8 and tonumber(v) end
-- Every read and check comes before the first write: a field with garbage in it must not
-- stop the script after the job left 'active' (it would be in no structure at all).
local f = redis.pcall('HMGET', jk, 'lk', 'st', 'pri', 'par', 'hist', 'att', 'state')
if f.err or f[1] ~= token then return 0 end
if not redis.call('ZSCORE', KEYS[1], id) then
  -- The token stays on the job after its failure is recorded (below): a call sent again
  -- after its reply was lost finds this lease's own outcome, and says so without a write.
  local s = f[7]
  if s == 'waiting' or s == 'delayed' or s == 'dead' or s == 'failed' then return 1 end
  return 0
end
local started, pri, parent = count(f[2]), int(f[3]), f[4]
local entries = {}
if f[5] then
  local ok, old = pcall(cjson.decode, f[5])
  if ok and type(old) == 'table' and (next(old) == nil or old[1] ~= nil) then
    entries = old
  else
    entries[1] = {error = 'earlier history was not a JSON list and was dropped'}
  end
end
local ok, rec = pcall(cjson.decode, ARGV[7])
if not ok or type(rec) ~= 'table' then rec = {error = ARGV[5]} end
redis.call('ZREM', KEYS[1], id)
local function push(job, job_pri)
  if job_pri then
    local seq = redis.call('HINCRBY', KEYS[6], 'pseq', 1) % P32
    redis.call('ZADD', KEYS[9], string.format('%.0f', -job_pri * P32 + seq), job)
  else
    redis.call('RPUSH', KEYS[2], job)
  end
  redis.call('ZADD', KEYS[7], 0, 'w')
end
local function event(...)
  if maxlen > 0 then redis.call('XADD', KEYS[10], 'MAXLEN', '~', maxlen, '*', ...) end
end
if started then redis.call('HINCRBY', KEYS[6], 'busy_ms', now - started) end
rec['finished_at'] = now
entries[#entries + 1] = rec
-- An attempt count that is not a number is replaced, not incremented (which would fail).
local att = (count(f[6]) or 0) + 1
redis.call('HSET', jk, 'err', ARGV[5], 'tb', ARGV[6], 'hist', cjson.encode(entries), 'att', att)
-- 'lk' is kept (the next lease replaces it): a repeat of this call is recognised (above).
local action = ARGV[3]
if action == 'retry' then
  redis.call('HINCRBY', KEYS[6], 'retried', 1)
  local delay = tonumber(ARGV[4])
  if delay > 0 then
    local due = now + delay
    redis.call('HSET', jk, 'state', 'delayed', 'due', due)
    redis.call('ZADD', KEYS[3], due, id)
    redis.call('ZADD', KEYS[7], 'LT', due, 'd')
  else
    redis.call('HSET', jk, 'state', 'waiting')
    push(id, pri)
  end
  event('e', 'retried', 'id', id, 'attempt', att, 'delay', delay, 'error', ARGV[5])
  return 1
end
local final = action == 'dead' and 'dead' or 'failed'
redis.call('HSET', jk, 'state', final, 'fin', now)
redis.call('ZADD', action == 'dead' and KEYS[4] or KEYS[5], now, id)
redis.call('HINCRBY', KEYS[6], 'failed', 1)
event('e', final, 'id', id, 'attempt', att, 'error', ARGV[5])
-- A flow's child failed for good: its parent follows its policy (child_failed.lua).
if parent then
  child_failed(string.sub(KEYS[2], 1, -5), parent, id, ARGV[5],
               'child ' .. id .. ' failed: ' .. ARGV[5], final, now, maxlen)
end
return 1
