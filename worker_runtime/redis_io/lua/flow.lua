--[[ flow: add a parent job that runs once all its children have finished.
KEYS[1] wait     LIST
KEYS[2] delayed  ZSET
KEYS[3] marker   ZSET
KEYS[4] stats    HASH
KEYS[5] job prefix
KEYS[6] prio     ZSET
KEYS[7] flows    ZSET parent id -> enqueue ms (parents waiting for children)
ARGV[1] parent id
ARGV[2] parent payload JSON
ARGV[3] parent priority (0 = none)
ARGV[4] on child failure: 'fail' | 'ignore'
ARGV[5..] children as quadruples: id, payload JSON, when, priority (as in enqueue.lua)
The parent waits in state 'waiting-children' with 'pend' = children not finished yet;
complete.lua hands each child's result to it and readies it after the last one.
Returns: 1 added, 0 the parent id exists (nothing added), or an error naming a child id
that exists already (nothing added). ]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local parent = ARGV[1]
local pk = KEYS[5] .. parent
if redis.call('EXISTS', pk) == 1 then return 0 end
for i = 5, #ARGV, 4 do
  if redis.call('EXISTS', KEYS[5] .. ARGV[i]) == 1 then
    return redis.error_reply('child job id ' .. ARGV[i] .. ' exists already')
  end
end
local P32 = 4294967296
local n = (#ARGV - 4) / 4
redis.call('HSET', pk, 'data', ARGV[2], 'ts', now, 'att', 0, 'stl', 0,
  'state', 'waiting-children', 'pend', n, 'ocf', ARGV[4])
if tonumber(ARGV[3]) ~= 0 then redis.call('HSET', pk, 'pri', ARGV[3]) end
redis.call('ZADD', KEYS[7], now, parent)
local ready, next_due = 0, nil
for i = 5, #ARGV, 4 do
  local id, data, when, pri = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local due
  if string.byte(when, 1) == 64 then due = tonumber(string.sub(when, 2)) else due = now + tonumber(when) end
  local jk = KEYS[5] .. id
  redis.call('HSET', jk, 'data', data, 'ts', now, 'att', 0, 'stl', 0, 'par', parent)
  if pri ~= 0 then redis.call('HSET', jk, 'pri', pri) end
  if due > now then
    redis.call('HSET', jk, 'state', 'delayed', 'due', due)
    redis.call('ZADD', KEYS[2], due, id)
    if next_due == nil or due < next_due then next_due = due end
  else
    redis.call('HSET', jk, 'state', 'waiting')
    if pri == 0 then
      redis.call('RPUSH', KEYS[1], id)
    else
      local seq = redis.call('HINCRBY', KEYS[4], 'pseq', 1) % P32
      redis.call('ZADD', KEYS[6], string.format('%.0f', -pri * P32 + seq), id)
    end
    ready = ready + 1
  end
end
redis.call('HINCRBY', KEYS[4], 'enqueued', n + 1)
if ready > 0 then redis.call('ZADD', KEYS[3], 0, 'w') end
if next_due ~= nil then redis.call('ZADD', KEYS[3], 'LT', next_due, 'd') end
return 1
