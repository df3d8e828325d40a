-- transition.lua: confirmed -> cancelled | redeemed, atomically.
-- A cancel gives the place back to the slot and the share back to the
-- citizen at once; a redeem keeps both taken. The event goes to the stream
-- like every other state change.
--
-- KEYS: 1 record  2 remaining  3 holdings  4 stats  5 stream
-- ARGV: 1 reservation id  2 target status ('cancelled' | 'redeemed')
-- Returns {'ok', slot, site, code, created_ms} | {'not_found'} | {'refused', status}

local rid, target = ARGV[1], ARGV[2]
local rec = redis.call('HMGET', KEYS[1], 'st', 'slot', 'site', 'code', 'ck', 't')
if not rec[1] then return {'not_found'} end
if rec[1] ~= 'confirmed' then return {'refused', rec[1]} end

local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local slot, site, code, ckey, created = rec[2], rec[3], rec[4], rec[5], rec[6]

redis.call('HSET', KEYS[1], 'st', target, 'u', now_ms)
redis.call('HINCRBY', KEYS[4], 'confirmed', -1)
redis.call('HINCRBY', KEYS[4], target, 1)
if target == 'cancelled' then
  redis.call('HINCRBY', KEYS[2], slot, 1)
  if redis.call('HINCRBY', KEYS[3], ckey, -1) <= 0 then redis.call('HDEL', KEYS[3], ckey) end
end
redis.call('XADD', KEYS[5], '*', 'e', target, 'id', rid, 'slot', slot, 'site', site,
  'st', target, 'code', code, 'ck', ckey, 't', created, 'u', now_ms)
return {'ok', slot, site, code, created}
