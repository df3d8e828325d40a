-- transition.lua: a reservation's change by a citizen or staff, atomically:
-- held -> confirmed | cancelled, confirmed -> cancelled | redeemed
-- (holds.lua's record_move). A cancel gives the place back to the slot and
-- the share back to the citizen at once; a redeem keeps both taken. A hold
-- past its expiry ends as expired here, whatever was asked (the sweep,
-- expire.lua, may not have reached it yet). The event goes to the stream
-- like every other state change.
--
-- KEYS: 1 records  2 remaining  3 holdings  4 stats  5 stream  6 cfg
--       7 the citizen's series ledger (RedisKeys.swift)  8 holds  9 holders
--       10 waitlist (waitlist.lua: a place given back is offered to the
--          first in line)
-- ARGV: 1 reservation id  2 target status ('confirmed' | 'cancelled' | 'redeemed')
--       3 actor  4 stream entries max (the hand-off's bound)
--       5 'series' for a series' campaign: a cancel leaves the citizen's
--         ledger too (a redeem stays counted), else ''
--       6 the bucket's key prefix when the campaign may have a waitlist
--         (not in a series), else ''
-- A cancel gives the series' share back only for a reservation whose
-- record the caller read: KEYS[7] is named from that record's citizen.
-- A campaign that had left the hot set (retire.lua marked it 'retired')
-- loses the mark in the same step as its event joins the stream, and the
-- caller then adds it to the set (HotSet.swift): the persister reads it
-- again, so the change reaches SQLite.
-- Returns {'ok', record, rejoin (1 when the campaign was retired)}
--       | {'same', record} (a confirm of a reservation confirmed or redeemed already)
--       | {'hold_expired', record, rejoin, ended now (1: this call gave the place back)}
--       | {'not_found'} | {'refused', status}
--       | {'backlog_full'}

local rid, target = ARGV[1], ARGV[2]
local text = redis.call('HGET', KEYS[1], rid)
if not text then return {'not_found'} end
local r = record_parse(text)
if not r then return {'unreadable_record'} end  -- a 503 and a log line (ScriptOutcomes.swift)
local now_ms = now_millis()
local due = r.status == 'held' and now_ms >= (tonumber(r.expires) or 0)

if not due then
  if target == 'confirmed' and (r.status == 'confirmed' or r.status == 'redeemed') then return {'same', text} end
  if r.status == 'expired' and target == 'confirmed' then return {'hold_expired', text, 0, 0} end
  local allowed = (r.status == 'held' and (target == 'confirmed' or target == 'cancelled'))
    or (r.status == 'confirmed' and (target == 'cancelled' or target == 'redeemed'))
  if not allowed then return {'refused', r.status} end
end
-- Its event, and with a line the place's offer: up to 21 more entries.
if redis.call('XLEN', KEYS[5]) + (ARGV[6] ~= '' and 22 or 1) > tonumber(ARGV[4]) then return {'backlog_full'} end

local k = {records = KEYS[1], remaining = KEYS[2], holdings = KEYS[3], stats = KEYS[4], stream = KEYS[5],
           holds = KEYS[8], holders = KEYS[9], ledger = ARGV[5] == 'series' and KEYS[7] or nil,
           cfg = KEYS[6], waitlist = ARGV[6] ~= '' and KEYS[10] or nil, prefix = ARGV[6]}
local rejoin = redis.call('HDEL', KEYS[6], 'retired')
if due then return {'hold_expired', record_move(k, rid, r, 'expired', now_ms, 'expiry'), rejoin, 1} end
return {'ok', record_move(k, rid, r, target, now_ms, ARGV[3]), rejoin}
