-- snapshot.lua: what a loop's read snapshot needs of one campaign, in one
-- round trip. Configuration (which changes rarely) only when its version
-- differs from the caller's; the places not handed out always: the
-- remaining counters, or with several buckets the pool and the places on
-- their way out of it (places.lua; each bucket's are read from its own
-- shard, Catalog.swift).
--
-- KEYS: 1 cfg  2 remaining  3 capacity  4 sites  5 slot metadata  6 pool
--       7 the pool's moves
-- ARGV: 1 the version the caller holds
-- Returns {version, cfg | false, capacity | false, sites | false, slots | false, places}

local meta = redis.call('HMGET', KEYS[1], 'ver', 'buckets', 'series')
local version = meta[1]
if not version then return {false} end
local places
-- Spread: several buckets, or a series' (CampaignBuckets.isSpread).
if (tonumber(meta[2]) or 1) > 1 or meta[3] then
  places = places_with_moves(KEYS[6], KEYS[7])
else
  places = redis.call('HGETALL', KEYS[2])
end
if version == ARGV[1] then
  return {version, false, false, false, false, places}
end
return {version, redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[3]),
        redis.call('HGETALL', KEYS[4]), redis.call('HGETALL', KEYS[5]), places}
