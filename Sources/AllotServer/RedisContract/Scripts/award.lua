-- award.lua: a lottery's winners get their reservations, a batch at a
-- time, in one bucket (issue 14). Once per registration: a batch sent
-- again (a draw run again after a crash) awards only whom it has not.
-- Every check comes before the first write: the whole batch or nothing.
--
-- KEYS: 1 cfg  2 remaining  3 holdings  4 records  5 stream
--       6 awards (registration id -> reservation id)  7 holds  8 holders
-- A lottery with holds (cfg 'hold' > 0) awards holds to confirm by
-- created + hold (holds.lua ends them; an unconfirmed place goes to the
-- next entry in ticket order, lottery_line.lua).
-- ARGV: 1 stream entries max  2 created ms, then per winner six values:
--       registration id, reservation id, slot, site, pickup code, citizen key
-- Returns {'ok', the reservation id of each winner, in order (the one
--       awarded before, for a registration awarded already)}
--       | {'not_lottery'} | {'slot_short', slot} | {'backlog_full'}
-- Records as reserve.lua writes them (ReservationRecord.swift). A lottery
-- is drawn after its window, when it may have left the hot set (retire.lua):
-- the mark goes in the same step as the events join the stream, and the
-- caller puts the campaign back in the set (as after transition.lua).

local cfg = redis.call('HMGET', KEYS[1], 'alloc', 'hold')
if cfg[1] ~= 'lottery' then return {'not_lottery'} end
local created = ARGV[2]
local hold_ms = tonumber(cfg[2] or '0') or 0
local expires = tonumber(created) + hold_ms
local todo, needed, answer, seen = {}, {}, {'ok'}, {}
for i = 3, #ARGV, 6 do
  -- Awarded before, or earlier in this batch: the same reservation.
  local before = redis.call('HGET', KEYS[6], ARGV[i]) or seen[ARGV[i]]
  answer[#answer + 1] = before or ARGV[i + 1]
  if not before then
    seen[ARGV[i]] = ARGV[i + 1]
    todo[#todo + 1] = i
    needed[ARGV[i + 2]] = (needed[ARGV[i + 2]] or 0) + 1
  end
end
for slot, count in pairs(needed) do
  if tonumber(redis.call('HGET', KEYS[2], slot) or '0') < count then return {'slot_short', slot} end
end
if redis.call('XLEN', KEYS[5]) + #todo > tonumber(ARGV[1]) then return {'backlog_full'} end

if #todo > 0 then redis.call('HDEL', KEYS[1], 'retired') end
for _, i in ipairs(todo) do
  local regid, rid, slot, site, code, ckey = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  local record = 'confirmed|' .. slot .. '|' .. site .. '|' .. code .. '|' .. ckey .. '|' .. created .. '|' .. created
  if hold_ms > 0 then
    record = 'held|' .. slot .. '|' .. site .. '|' .. code .. '|' .. ckey .. '|' .. created .. '|' .. created .. '|' .. expires
    redis.call('ZADD', KEYS[7], expires, rid)
    redis.call('HSET', KEYS[8], ckey, rid)
  end
  redis.call('HINCRBY', KEYS[2], slot, -1)
  redis.call('HINCRBY', KEYS[3], ckey, 1)
  redis.call('HSET', KEYS[4], rid, record)
  redis.call('XADD', KEYS[5], '*', 'e', rid .. '|' .. record, 'a', 'draw')
  redis.call('HSET', KEYS[6], regid, rid)
end
return answer
