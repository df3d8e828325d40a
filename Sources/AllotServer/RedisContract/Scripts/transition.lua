-- transition.lua: confirmed -> cancelled | redeemed, atomically.
-- A cancel gives the place back to the slot and the share back to the
-- citizen at once; a redeem keeps both taken. The event goes to the stream
-- like every other state change.
--
-- KEYS: 1 records  2 remaining  3 holdings  4 stats  5 stream  6 cfg
--       7 the citizen's series ledger (RedisKeys.swift)
-- ARGV: 1 reservation id  2 target status ('cancelled' | 'redeemed')  3 actor
--       4 stream entries max (the hand-off's bound)
--       5 'series' for a series' campaign: a cancel leaves the citizen's
--         ledger too (a redeem stays counted), else ''
-- A cancel gives the series' share back only for a reservation whose
-- record the caller read: KEYS[7] is named from that record's citizen.
-- A campaign that had left the hot set (retire.lua marked it 'retired')
-- loses the mark in the same step as its event joins the stream, and the
-- caller then adds it to the set (HotSet.swift): the persister reads it
-- again, so the change reaches SQLite.
-- Returns {'ok', record, rejoin (1 when the campaign was retired)}
--       | {'not_found'} | {'refused', status} | {'backlog_full'}
-- Record layout: status|slot|site|code|citizen key|created ms|updated ms

local rid, target = ARGV[1], ARGV[2]
local record = redis.call('HGET', KEYS[1], rid)
if not record then return {'not_found'} end
local status, slot, site, code, ckey, created =
  string.match(record, '^([^|]+)|([^|]+)|([^|]+)|([^|]+)|([^|]+)|([^|]+)|')
if not status then return {'unreadable_record'} end  -- a 503 and a log line (ScriptOutcomes.swift)
if status ~= 'confirmed' then return {'refused', status} end
if redis.call('XLEN', KEYS[5]) >= tonumber(ARGV[4]) then return {'backlog_full'} end

local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local next_record = target .. '|' .. slot .. '|' .. site .. '|' .. code .. '|' .. ckey .. '|' .. created .. '|' .. now_ms

redis.call('HSET', KEYS[1], rid, next_record)
redis.call('HINCRBY', KEYS[4], target, 1)
if target == 'cancelled' then
  redis.call('HINCRBY', KEYS[2], slot, 1)
  if redis.call('HINCRBY', KEYS[3], ckey, -1) <= 0 then redis.call('HDEL', KEYS[3], ckey) end
  if ARGV[5] == 'series' then redis.call('ZREM', KEYS[7], rid) end
end
redis.call('XADD', KEYS[5], '*', 'e', rid .. '|' .. next_record, 'a', ARGV[3])
return {'ok', next_record, redis.call('HDEL', KEYS[6], 'retired')}
