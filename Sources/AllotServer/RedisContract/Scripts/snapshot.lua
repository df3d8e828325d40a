-- snapshot.lua: what a loop's read snapshot needs of one campaign, in one
-- round trip. Configuration (which changes rarely) only when its version
-- differs from the caller's; the remaining counters always.
--
-- KEYS: 1 cfg  2 remaining  3 capacity  4 sites  5 slot metadata
-- ARGV: 1 the version the caller holds
-- Returns {version, cfg | false, capacity | false, sites | false, slots | false, remaining}

local version = redis.call('HGET', KEYS[1], 'ver')
if not version then return {false} end
if version == ARGV[1] then
  return {version, false, false, false, false, redis.call('HGETALL', KEYS[2])}
end
return {version, redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[3]),
        redis.call('HGETALL', KEYS[4]), redis.call('HGETALL', KEYS[5]),
        redis.call('HGETALL', KEYS[2])}
