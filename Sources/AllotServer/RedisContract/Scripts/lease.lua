-- lease.lua: the writer lease (WriterLease.swift): one process at a time
-- writes SQLite. Taking the lease draws a new fencing number, which every
-- SQLite transaction of the holder checks (Schema.claimFence): a holder
-- that lost the lease (paused past its life) can no longer write, even if
-- it wakes up believing it still holds it.
--
-- KEYS: 1 lease  2 fence counter
-- ARGV: 1 holder (node id and a per-process instance)  2 life in ms, or
--       0 to let it go (a clean stop: a standby takes over at once)
--       3 the last fence SQLite has seen: a new fence is above it, even if
--         Redis lost its counter (a recover, a failover that lost the INCR)
-- Value: '<holder>|<fence>'
-- Returns the holder's fence (renewed), a new one (taken), or 0 (another
-- holds it, or it was let go).

local held = redis.call('GET', KEYS[1])
if held then
  local holder, fence = string.match(held, '^(.*)|(%d+)$')
  if holder ~= ARGV[1] then return 0 end
  if ARGV[2] == '0' then
    redis.call('DEL', KEYS[1])
    return 0
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(fence)
end
if ARGV[2] == '0' then return 0 end
local fence = redis.call('INCR', KEYS[2])
local floor = tonumber(ARGV[3]) or 0
if fence <= floor then
  fence = floor + 1
  redis.call('SET', KEYS[2], fence)
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. fence, 'PX', ARGV[2])
return fence
