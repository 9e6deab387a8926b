--[[ reclaim: requeue jobs whose lease expired (their worker died); fail repeat stallers.
KEYS[1]  active   ZSET
KEYS[2]  wait     LIST
KEYS[3]  dead     ZSET
KEYS[4]  failed   ZSET
KEYS[5]  stats    HASH
KEYS[6]  marker   ZSET
KEYS[7]  job prefix
KEYS[8]  prio     ZSET (ready jobs with a priority)
KEYS[9]  events   STREAM
KEYS[10] flows    ZSET parents waiting for children
KEYS[11] child failures prefix (HASH per parent)
KEYS[12] lease clock STRING (lease_clock.lua): a Redis freeze is not a dead worker
ARGV[1] max stalls: a job stalled more often than this fails
ARGV[2] max jobs to reclaim in this call
ARGV[3] 1 = failures go to the dead-letter store, 0 = to the failed set
ARGV[4] events stream length (approximate MAXLEN), 0 = no events
A job hash whose stall count is garbage fails for good with the reason (checked before the
first write, so no job is left half moved); a garbage history is started afresh.
Returns: {{requeued ids}, {failed ids}} ]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local max_stalls = tonumber(ARGV[1])
local to_dead = ARGV[3] == '1'
local maxlen = tonumber(ARGV[4] or 0)
-- Callers of the older, shorter form: derive the added keys from KEYS[2] ('<base>:wait').
for _, k in ipairs({{8, 'prio'}, {9, 'events'}, {10, 'flows'}, {11, 'kidfail:'}, {12, 'lclock'}}) do
  KEYS[k[1]] = KEYS[k[1]] or (string.sub(KEYS[2], 1, -5) .. k[2])
end
local P32 = 4294967296
local function event(...)
  if maxlen > 0 then redis.call('XADD', KEYS[9], 'MAXLEN', '~', maxlen, '*', ...) end
end
local function push(job, pri, head)
  if pri then
    local seq = 0
    if not head then seq = redis.call('HINCRBY', KEYS[5], 'pseq', 1) % P32 end
    redis.call('ZADD', KEYS[8], string.format('%.0f', -pri * P32 + seq), job)
  elseif head then
    redis.call('LPUSH', KEYS[2], job)
  else
    redis.call('RPUSH', KEYS[2], job)
  end
end
lease_tick(KEYS[12], KEYS[1], now)
local final = to_dead and 'dead' or 'failed'
local final_set = to_dead and KEYS[3] or KEYS[4]
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local requeued, failed = {}, {}
for _, id in ipairs(ids) do
  local jk = KEYS[7] .. id
  local kind = redis.call('TYPE', jk).ok
  if kind ~= 'hash' and kind ~= 'none' then
    -- A key of another type (overwritten by something else): set aside, as fetch does, and
    -- the job fails for good with the reason. (Left in 'active', it would stop every reclaim
    -- of the queue: its id sorts first each time and the script errors on it.)
    local msg = 'malformed job: job key is a ' .. kind .. ', not a hash'
    redis.call('RENAME', jk, jk .. ':bad')
    redis.call('ZREM', KEYS[1], id)
    redis.call('HSET', jk, 'state', final, 'err', msg, 'fin', now)
    redis.call('ZADD', final_set, now, id)
    redis.call('HINCRBY', KEYS[5], 'failed', 1)
    event('e', final, 'id', id, 'error', msg)
    failed[#failed + 1] = id
  else
    local exists = kind == 'hash'
    local f = redis.call('HMGET', jk, 'pri', 'par', 'stl', 'hist')
    local stalls = tonumber(f[3] or '0')
    local corrupt = not stalls or stalls ~= math.floor(stalls) or math.abs(stalls) > 2 ^ 52
    if corrupt then stalls = 0 end
    redis.call('ZREM', KEYS[1], id)
    if exists then
      stalls = stalls + 1
      redis.call('HSET', jk, 'stl', stalls)
      redis.call('HDEL', jk, 'lk')
      redis.call('HINCRBY', KEYS[5], 'stalled', 1)
      if stalls > max_stalls or corrupt then
        local msg = 'job stalled ' .. stalls .. ' times (worker lost while running it)'
        if corrupt then
          msg = 'corrupt job hash: stall count ' .. string.sub(tostring(f[3]), 1, 40) .. ' is not an integer'
        end
        local ok, entries = pcall(cjson.decode, f[4] or '[]')
        if not ok or type(entries) ~= 'table' then entries = {} end
        entries[#entries + 1] = {error = msg, finished_at = now, stalled = true}
        redis.call('HSET', jk, 'err', msg, 'tb', '', 'hist', cjson.encode(entries), 'fin', now)
        redis.call('HSET', jk, 'state', final)
        redis.call('ZADD', final_set, now, id)
        redis.call('HINCRBY', KEYS[5], 'failed', 1)
        event('e', final, 'id', id, 'error', msg)
        failed[#failed + 1] = id
        local parent = f[2]
        if parent then  -- the parent follows its policy (child_failed.lua)
          local pmsg = 'child ' .. id .. ' failed: ' .. msg
          if child_failed(string.sub(KEYS[2], 1, -5), parent, id, msg, pmsg, final, now,
                          maxlen) == 'waiting' then
            requeued[#requeued + 1] = parent
          end
        end
      else
        -- To the head: it was taken before anything still waiting.
        redis.call('HSET', jk, 'state', 'waiting')
        push(id, tonumber(f[1]), true)
        requeued[#requeued + 1] = id
      end
    end
  end
end
if #requeued > 0 then redis.call('ZADD', KEYS[6], 0, 'w') end
return {requeued, failed}
