--[[ enqueue: add jobs to a queue, skipping ids that already exist (dedup).
KEYS[1] wait     LIST  ready job ids (priority 0)
KEYS[2] delayed  ZSET  id -> due ms
KEYS[3] marker   ZSET  wake-up marker for idle workers
KEYS[4] stats    HASH  counters (and 'pseq', the priority sequence)
KEYS[5] job prefix (job hash = prefix .. id; same hash tag)
KEYS[6] prio     ZSET  id -> -priority * 2^32 + sequence (ready jobs with a priority)
ARGV[1] fields per job: 3 (id, payload JSON, when) or 4 (and priority)
ARGV[2..] the jobs
  when: '0' ready now, 'N' a delay of N ms, '@N' due at epoch ms N (Redis' clock)
  priority: integer, 0 = none (the plain LIST); higher runs first
(Calls without priorities send 3 fields: bulk enqueues stay as lean as before.)
Time is Redis' own clock (TIME), so producers and workers need no clock sync.
Returns: one flag per job, 1 added, 0 already existed. ]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local out = {}
local ready, added = 0, 0
local next_due = nil
local stride = tonumber(ARGV[1])
for i = 2, #ARGV, stride do
  local id, data, when = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local pri = 0
  if stride == 4 then pri = tonumber(ARGV[i + 3]) end
  local due
  if string.byte(when, 1) == 64 then due = tonumber(string.sub(when, 2)) else due = now + tonumber(when) end
  local jk = KEYS[5] .. id
  if redis.call('EXISTS', jk) == 1 then
    out[#out + 1] = 0
  else
    added = added + 1
    if due > now then
      redis.call('HSET', jk, 'data', data, 'ts', now, 'att', 0, 'stl', 0, 'state', 'delayed', 'due', due)
      redis.call('ZADD', KEYS[2], due, id)
      if next_due == nil or due < next_due then next_due = due end
    else
      redis.call('HSET', jk, 'data', data, 'ts', now, 'att', 0, 'stl', 0, 'state', 'waiting')
      if pri == 0 then
        redis.call('RPUSH', KEYS[1], id)
      else
        local seq = redis.call('HINCRBY', KEYS[4], 'pseq', 1) % 4294967296
        -- %.0f: Lua's default number format keeps 14 digits only; scores need 16.
        redis.call('ZADD', KEYS[6], string.format('%.0f', -pri * 4294967296 + seq), id)
      end
      ready = ready + 1
    end
    if pri ~= 0 then redis.call('HSET', jk, 'pri', pri) end
    out[#out + 1] = 1
  end
end
if added > 0 then redis.call('HINCRBY', KEYS[4], 'enqueued', added) end
if ready > 0 then redis.call('ZADD', KEYS[3], 0, 'w') end
if next_due ~= nil then redis.call('ZADD', KEYS[3], 'LT', next_due, 'd') end
return out
