-- waitlist_join.lua: a citizen refused with slot_full joins the waitlist
-- of that slot or of its site (issue 14), atomically. Every check comes
-- before the first write (but the rate limits' tokens, as reserve.lua).
--
-- KEYS: 1 cfg  2 remaining  3 holdings  4 waitlist  5 waiters  6 stream
--       7 the target's queue  8 the join counter
--       9 bucket:global  10 bucket:ip  11 bucket:citizen
--       12 the line's targets (waitlist_serve)
-- ARGV: 1 entry id  2 citizen key  3 target ('<slot>' or 'site:<site>')
--       4 the target's slots, comma-separated  5 the offer's reservation id
--       6 the offer's pickup code  7 stream entries max  8 the target's site
--       9 the target's slots the node saw places of elsewhere (a spread
--         campaign's pool or other buckets), comma-separated
-- In a spread campaign the line is the citizen's bucket's, and so is
-- 'places_left' here, with the places the node saw elsewhere (ARGV 9):
-- places elsewhere are moved here for the line (HoldSweeper.swift), as
-- they would be for a reservation.
-- The queues are named from the bucket's prefix (KEYS[4]'s name without
-- ':wl'), under its tag.
-- Returns {'ok', joined ms, position} | {'not_found'} | {'no_waitlist'}
--       | {'campaign_not_open'} | {'already_waiting'} | {'citizen_limit_reached', limit}
--       | {'places_left'} | {'rate_limited', bucket, retry_after_s, rate, burst}
--       | {'backlog_full'} | {'misconfigured', what}

local id, ckey, target = ARGV[1], ARGV[2], ARGV[3]
local cfg = redis.call('HMGET', KEYS[1], 'status', 'opens', 'closes', 'limit', 'wl_offer',
  'g_rate', 'g_burst', 'ip_rate', 'ip_burst', 'c_rate', 'c_burst')
if not cfg[1] then return {'not_found'} end
local opens, closes, limit = tonumber(cfg[2]), tonumber(cfg[3]), tonumber(cfg[4])
if not opens or not closes or not limit then return {'misconfigured', 'campaign'} end
if tonumber(cfg[5] or '0') <= 0 then return {'no_waitlist'} end
local time = redis.call('TIME')
local now_us = tonumber(time[1]) * 1000000 + tonumber(time[2])
local now_ms = math.floor(now_us / 1000)
if cfg[1] ~= 'open' or now_ms < opens or now_ms >= closes then return {'campaign_not_open'} end
local limited, spent = buckets_take({cfg[6], cfg[7], cfg[8], cfg[9], cfg[10], cfg[11]}, {KEYS[9], KEYS[10], KEYS[11]}, now_us)
if limited then return limited end
if redis.call('XLEN', KEYS[6]) >= tonumber(ARGV[7]) then return {'backlog_full'} end
buckets_spend(spent)

local prior = waitlist_parse(redis.call('HGET', KEYS[4], redis.call('HGET', KEYS[5], ckey) or ''))
if prior and prior.status == 'waiting' then return {'already_waiting'} end
if tonumber(redis.call('HGET', KEYS[3], ckey) or '0') >= limit then return {'citizen_limit_reached', limit} end
-- A place on sale with nobody in line for it is booked, not waited for
-- (while anyone waits for it, reserve.lua keeps it for the line: joining
-- is the way to it).
local prefix = string.sub(KEYS[4], 1, -4)
for slot in string.gmatch(ARGV[4], '[^,]+') do
  if tonumber(redis.call('HGET', KEYS[2], slot) or '0') > 0 and not waitlist_waits(prefix, slot, ARGV[8]) then
    return {'places_left'}
  end
end
-- So are places the node saw in the pool or another bucket (a spread
-- campaign's; a reservation's refill brings them), unless this bucket's
-- line waits for them too: then they come to the line.
for slot in string.gmatch(ARGV[9] or '', '[^,]+') do
  if not waitlist_waits(prefix, slot, ARGV[8]) then return {'places_left'} end
end

local k = {waitlist = KEYS[4], stream = KEYS[6]}
local seq = redis.call('INCR', KEYS[8])
waitlist_write(k, id, {status = 'waiting', target = target, ckey = ckey, joined = now_ms, rid = ARGV[5], code = ARGV[6]}, now_ms)
redis.call('HSET', KEYS[5], ckey, id)
redis.call('ZADD', KEYS[7], seq, id)
-- The target is served from places on sale (waitlist_serve; every slot's
-- site is noted as slots are put, AdminStore.swift).
redis.call('SADD', KEYS[12], target)
return {'ok', now_ms, redis.call('ZRANK', KEYS[7], id) + 1}
