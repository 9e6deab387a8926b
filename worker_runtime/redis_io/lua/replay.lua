--[[ replay: move dead-lettered jobs back to the queue with a fresh attempt budget.
KEYS[1] dead    ZSET
KEYS[2] wait    LIST
KEYS[3] marker  ZSET
KEYS[4] job prefix
KEYS[5] prio    ZSET (ready jobs with a priority)
KEYS[6] stats   HASH ('pseq': the priority sequence)
KEYS[7] child failures prefix (HASH per parent: child id -> error)
ARGV[1..] job ids
Flows: a parent that a child took down before it ran ('pend' > 0) stays dead-lettered: on its
own it would run without its children's results. A child whose failure its parent ignored and
counted (the parent still waits for others) is owed again: the parent waits for this run too,
so the child's completion does not count it a second time.
Returns: number of jobs replayed (ids not in the dead-letter store, and parents as above, are
left alone). ]]
local n = 0
for i = 1, #ARGV do
  local id = ARGV[i]
  local jk = KEYS[4] .. id
  local f = redis.call('HMGET', jk, 'pend', 'par', 'pri')
  local pend = tonumber(f[1])
  if not (pend and pend > 0) and redis.call('ZREM', KEYS[1], id) == 1 then
    -- History and last error stay for the record; the counters start over.
    redis.call('HSET', jk, 'state', 'waiting', 'att', 0, 'stl', 0)
    redis.call('HINCRBY', jk, 'replays', 1)
    redis.call('HDEL', jk, 'fin')
    local parent = f[2]
    if parent then
      local pk = KEYS[4] .. parent
      if redis.call('HGET', pk, 'state') == 'waiting-children'
        and redis.call('HDEL', KEYS[7] .. parent, id) == 1 then
        redis.call('HINCRBY', pk, 'pend', 1)
      end
    end
    local pri = tonumber(f[3])
    if pri then
      local seq = redis.call('HINCRBY', KEYS[6], 'pseq', 1) % 4294967296
      redis.call('ZADD', KEYS[5], string.format('%.0f', -pri * 4294967296 + seq), id)
    else
      redis.call('RPUSH', KEYS[2], id)
    end
    n = n + 1
  end
end
if n > 0 then redis.call('ZADD', KEYS[3], 0, 'w') end
return n
