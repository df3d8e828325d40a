-- holds.lua: a reservation's record read in Lua, and a held or confirmed
-- one moved on (issue 14's holds). Not a script of its own: Scripts.swift
-- puts it in front of the library's functions (transition.lua and
-- expire.lua end holds; reserve.lua makes them).
--
-- A record (ReservationRecord.swift): status|slot|site|code|citizen
-- key|created ms|updated ms, then |expires ms for a reservation made as a
-- hold (kept once the hold has ended: when it was due).
local function record_parse(text)
  local status, slot, site, code, ckey, created, updated, expires =
    string.match(text, '^([^|]+)|([^|]+)|([^|]+)|([^|]+)|([^|]+)|([^|]+)|([^|]+)|?([^|]*)$')
  if not status then return nil end
  return {status = status, slot = slot, site = site, code = code, ckey = ckey, created = created, expires = expires}
end

-- Moves reservation `rid` (its record read as `r`) to `target` at `now_ms`
-- and puts the event in the stream, `actor` with it. `k` names the
-- bucket's keys: records, remaining, holdings, stats, stream, holds,
-- holders, `ledger` (the citizen's series ledger, or nil outside a
-- series), and for a campaign that may have a waitlist cfg, waitlist and
-- prefix (waitlist.lua; nil: none). A hold that ends leaves the holds; a
-- place given back (cancelled, expired) returns to its slot and the share
-- to the citizen, and is offered to the first in line (waitlist_offer).
-- The caller has checked the move is allowed and the stream has room.
-- Returns the new record.
local function record_move(k, rid, r, target, now_ms, actor)
  local text = target .. '|' .. r.slot .. '|' .. r.site .. '|' .. r.code .. '|' .. r.ckey .. '|' .. r.created .. '|' .. now_ms
  if r.expires ~= '' then text = text .. '|' .. r.expires end
  redis.call('HSET', k.records, rid, text)
  if r.status == 'held' then
    redis.call('ZREM', k.holds, rid)
    if redis.call('HGET', k.holders, r.ckey) == rid then redis.call('HDEL', k.holders, r.ckey) end
  end
  if target == 'cancelled' or target == 'expired' then
    redis.call('HINCRBY', k.remaining, r.slot, 1)
    if redis.call('HINCRBY', k.holdings, r.ckey, -1) <= 0 then redis.call('HDEL', k.holdings, r.ckey) end
    if k.ledger then redis.call('ZREM', k.ledger, rid) end
  end
  -- Places taken are capacity - remaining; the stats count what left them.
  if target ~= 'confirmed' then redis.call('HINCRBY', k.stats, target, 1) end
  redis.call('XADD', k.stream, '*', 'e', rid .. '|' .. text, 'a', actor)
  if target == 'cancelled' or target == 'expired' then waitlist_offer(k, r.slot, r.site, now_ms) end
  return text
end

local function now_millis()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
