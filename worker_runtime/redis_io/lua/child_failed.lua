--[[ child_failed: not an operation but functions prepended (scripts.py) to the scripts that
end a flow's child: fail, reclaim, cancel, fetch (a malformed child), complete (a result the
parent cannot take, and readying the parent) and remove. One place for the parent's
on_child_failure policy and for readying a parent (parent_ready, below).
child_failed(base, parent, id, why, pmsg, final, now, maxlen):
  base    '<queue base>:'; the keys below are named from it as in core/keys.py (all in the
          queue's hash tag): job:<parent>, kidfail:<parent>, flows, wait, prio, marker, stats,
          dead / failed, events
  parent  the parent's id (the child's 'par' field); id: the child's id
  why     the child's error, kept for the parent under policy 'ignore'
  pmsg    the parent's error when the policy ('fail') fails it
  final   'dead' or 'failed': where a parent failed by its child goes
  now     Redis ms; maxlen: events stream length (0 = no events; nil = not known: append,
          untrimmed, only where the queue keeps events)
Policy 'ignore': the child's error recorded, the last child readies the parent. Otherwise (or
when the parent's failures record is not a hash) the parent ends as `final`. A parent not waiting for children, or whose hash holds garbage, is
left alone. Reads come first, so garbage cannot stop the caller midway.
Returns: 'waiting' if the parent was readied, `final` if it failed, nil otherwise. ]]
-- parent_ready(base, parent, pri): the parent's last awaited child is done (completed, failed
-- under 'ignore', or removed): it leaves 'flows' and waits in the queue (by its priority `pri`,
-- a number or nil) like any ready job. Shared by child_failed, complete and remove.
local function parent_ready(base, parent, pri)
  redis.call('ZREM', base .. 'flows', parent)
  redis.call('HSET', base .. 'job:' .. parent, 'state', 'waiting')
  if pri then
    local seq = redis.call('HINCRBY', base .. 'stats', 'pseq', 1) % 4294967296
    redis.call('ZADD', base .. 'prio', string.format('%.0f', -pri * 4294967296 + seq), parent)
  else
    redis.call('RPUSH', base .. 'wait', parent)
  end
  redis.call('ZADD', base .. 'marker', 0, 'w')
end

local function child_failed(base, parent, id, why, pmsg, final, now, maxlen)
  local pk = base .. 'job:' .. parent
  local p = redis.pcall('HMGET', pk, 'state', 'ocf', 'pri', 'pend')
  local function int(v) return v and string.find(v, '^-?%d+$') and #v <= 8 and tonumber(v) end
  if p.err or p[1] ~= 'waiting-children' or not int(p[4]) then return nil end
  local kidfail = base .. 'kidfail:' .. parent
  local kt = redis.call('TYPE', kidfail).ok
  -- A failures record of another type cannot take this one: the parent fails instead (an
  -- error here would stop the calling script after its writes).
  if p[2] == 'ignore' and (kt == 'hash' or kt == 'none') then
    redis.call('HSET', kidfail, id, why)
    if redis.call('HINCRBY', pk, 'pend', -1) > 0 then return nil end
    parent_ready(base, parent, int(p[3]))
    return 'waiting'
  end
  redis.call('ZREM', base .. 'flows', parent)
  redis.call('HSET', pk, 'state', final, 'fin', now, 'err', pmsg)
  redis.call('ZADD', base .. final, now, parent)
  redis.call('HINCRBY', base .. 'stats', 'failed', 1)
  local events = base .. 'events'
  if maxlen == nil then
    if redis.call('EXISTS', events) == 1 then
      redis.call('XADD', events, '*', 'e', final, 'id', parent, 'error', pmsg)
    end
  elseif maxlen > 0 then
    redis.call('XADD', events, 'MAXLEN', '~', maxlen, '*', 'e', final, 'id', parent, 'error', pmsg)
  end
  return final
end
