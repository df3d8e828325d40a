-- expire.lua: ends the holds of one bucket that are past their expiry
-- (issue 14): each becomes 'expired' and its place goes back to its slot
-- (holds.lua's record_move). Every node sweeps every few hundred
-- milliseconds (HoldSweeper.swift), so no node's loss leaves a place held;
-- two sweeps at once are harmless (each hold ends once, in one step).
-- A bucket with a line then serves it from places on sale (waitlist.lua).
--
-- KEYS: 1 records  2 remaining  3 holdings  4 stats  5 stream  6 holds
--       7 holders  8 cfg  9 waitlist (a place given back is offered to the
--       first in line: waitlist.lua)  10 slot metadata (a lottery's places
--       left over are offered to its line: waitlist_offer_left)
--       11 the line's slots' sites  12 the line's targets (waitlist_serve)
-- ARGV: 1 stream entries max  2 holds ended per call at most
--       3 the series ledgers' prefix (`<tag>:sl:`) for a series' bucket, else ''
--       4 the bucket's key prefix when the campaign may have a waitlist, else ''
-- Returns {holds ended, then the line's targets waiting with no place of
-- theirs here}, or {-1} when the stream had no room for any hold due
-- (nothing written: the next sweep tries again).
-- A series' ledgers are named from the records read here: the same hash
-- tag as the declared keys, so the same cluster slot.

local now_ms = now_millis()
local due = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now_ms, 'LIMIT', 0, tonumber(ARGV[2]))
-- The bucket's keys, as record_move and waitlist.lua take them; a
-- record's series ledger is set per record.
local k = {records = KEYS[1], remaining = KEYS[2], holdings = KEYS[3], stats = KEYS[4], stream = KEYS[5],
           holds = KEYS[6], holders = KEYS[7], cfg = KEYS[8], waitlist = ARGV[4] ~= '' and KEYS[9] or nil, prefix = ARGV[4],
           wsites = KEYS[11], wtargets = KEYS[12]}
-- Each hold ended writes its event, and with a line its place's offer up
-- to 21 more (20 passed over, or 19 and the offer's two): as many end as
-- the stream has room for, the rest at the next sweep.
local room = math.floor((tonumber(ARGV[1]) - redis.call('XLEN', KEYS[5])) / (k.waitlist and 22 or 1))
if #due > 0 and room <= 0 then return {-1} end
local ended = 0
for index, rid in ipairs(due) do
  if index > room then break end
  local text = redis.call('HGET', KEYS[1], rid)
  local r = text and record_parse(text)
  if r and r.status == 'held' then
    k.ledger = ARGV[3] ~= '' and (ARGV[3] .. r.ckey) or nil
    record_move(k, rid, r, 'expired', now_ms, 'expiry')
    ended = ended + 1
  else
    -- Not a hold any more (or unreadable: left for the operator, never ended twice).
    redis.call('ZREM', KEYS[6], rid)
  end
end
local out = {ended}
-- Places on sale while some wait go to the line: a lottery's left over
-- (waitlist_offer_left), a first-come line's (waitlist_serve). Up to 20
-- offers tried a sweep, with room for their events (22 entries each at
-- most: up to 20 passed over, or 19 and the offer's two).
if k.waitlist and redis.call('XLEN', KEYS[5]) + 20 * 22 <= tonumber(ARGV[1]) then
  if redis.call('HGET', KEYS[8], 'alloc') == 'lottery' then
    waitlist_offer_left(k, KEYS[10], now_ms, 20)
  else
    local _, wanting = waitlist_serve(k, now_ms, 20)
    for _, target in ipairs(wanting) do out[#out + 1] = target end
  end
end
return out
