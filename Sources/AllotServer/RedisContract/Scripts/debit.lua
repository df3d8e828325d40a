-- debit.lua: the first of a move's three steps (PlaceTransfer.swift): takes
-- places of one slot out of the source (the campaign's pool, or a bucket's
-- remaining) and records the move under its id, in one step, so places
-- out of the source are always in a record until the target has them.
--
-- KEYS: 1 source places (slot -> places)  2 source's moves (id -> record)
--       3 the move's settled mark (settle.lua)
-- ARGV: 1 slot  2 places wanted, or 'half' (half of what the source has,
--       rounded up)  3 move id  4 target bucket
-- Record: slot|places|target bucket|ms
-- Returns the places taken; when the source had none for the taking (none,
-- or its line waits for them: nothing recorded),
-- 0 or minus the places of the slot in its moves not yet settled: on their
-- way to a bucket, so the slot is not sold out.
-- The same id again (a debit sent twice) takes nothing more: it returns
-- what the first took, from the record or, once settled, from its mark.

local slot, wanted, id, target = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local prior = redis.call('HGET', KEYS[2], id)
if prior then return tonumber(string.match(prior, '^[^|]+|(%d+)|')) end
local settled = redis.call('GET', KEYS[3])
if settled then return tonumber(settled) end
local have = tonumber(redis.call('HGET', KEYS[1], slot) or '0') or 0
-- A bucket whose line waits for the slot (or its site) keeps its places
-- for the line (waitlist.lua): they are not moved away from it. (The
-- queues are named from the source's prefix, KEYS[2]'s name without
-- ':xfer', under its tag; the pool has none.)
if have > 0 then
  local prefix = string.sub(KEYS[2], 1, -6)
  if waitlist_waits(prefix, slot, redis.call('HGET', prefix .. ':wlsite', slot) or nil) then have = 0 end
end
local places
if wanted == 'half' then places = math.ceil(have / 2) else places = math.min(have, tonumber(wanted) or 0) end
if places <= 0 then
  local travelling = 0
  for _, record in ipairs(redis.call('HVALS', KEYS[2])) do
    local moved_slot, count = string.match(record, '^([^|]+)|(%d+)|')
    if moved_slot == slot then travelling = travelling + tonumber(count) end
  end
  return -travelling
end
local time = redis.call('TIME')
redis.call('HINCRBY', KEYS[1], slot, -places)
redis.call('HSET', KEYS[2], id, slot .. '|' .. places .. '|' .. target .. '|' .. time[1] .. string.sub('00000' .. time[2], -6, -4))
return places
