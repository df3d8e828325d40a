-- stats.lua: live counters of one campaign.
-- KEYS: 1 stats  2 remaining  3 capacity  4 holds
-- Returns {stats pairs, total capacity, total remaining, holds not ended}
-- O(slots): fine for an operator's request, not for the hot path.
local function sum(values)
  local total = 0
  for _, value in ipairs(values) do total = total + tonumber(value) end
  return total
end
return {redis.call('HGETALL', KEYS[1]), sum(redis.call('HVALS', KEYS[3])), sum(redis.call('HVALS', KEYS[2])),
        redis.call('ZCARD', KEYS[4])}
