-- retire.lua: marks a campaign 'retired' (the persister then takes it out
-- of the hot set, the campaigns every loop refreshes and the persister
-- reads) once nothing more can reach its stream unseen: booking has ended
-- (closed, or past closes_at, by Redis's clock) and every entry of its
-- stream has been delivered to the persister and acknowledged. Atomic, so
-- no reservation or change slips in between the check and the mark:
-- reserve.lua writes only while booking is open, and transition.lua and
-- operators' changes clear the mark before the campaign is back in the
-- set (HotSet.swift has the whole order).
--
-- A bucket with a move of places out of it not yet settled stays too (the
-- move sweeper follows hot campaigns only).
--
-- A bucket with holds not yet ended stays (the hold sweep follows hot
-- campaigns only).
--
-- KEYS: 1 cfg  2 stream  3 moves out of here  4 holds
-- ARGV: 1 consumer group
-- Returns 1 when the campaign is marked, else 0.

local cfg = redis.call('HMGET', KEYS[1], 'status', 'closes')
if not cfg[1] then return 0 end
local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local closes = tonumber(cfg[2])
if cfg[1] ~= 'closed' and (not closes or now_ms < closes) then return 0 end
if redis.call('HLEN', KEYS[3]) > 0 or redis.call('ZCARD', KEYS[4]) > 0 then return 0 end

if redis.call('EXISTS', KEYS[2]) == 1 then
  local delivered = nil
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[2])) do
    local fields = {}
    for i = 1, #group, 2 do fields[group[i]] = group[i + 1] end
    if fields['name'] == ARGV[1] then
      if tonumber(fields['pending']) ~= 0 then return 0 end
      delivered = fields['last-delivered-id']
    end
  end
  if not delivered then return 0 end
  -- Any entry after the last one delivered is still on its way.
  if #redis.call('XRANGE', KEYS[2], '(' .. delivered, '+', 'COUNT', 1) > 0 then return 0 end
end
redis.call('HSET', KEYS[1], 'retired', '1')
return 1
