-- register.lua: one lottery registration, atomically (issue 14). A citizen
-- registers once per lottery: their first registration stands (its id is
-- the answer to a second). Every check comes before the first write.
--
-- KEYS: 1 cfg (the citizen's bucket's booking fields)  2 registrations
--       (id -> record)  3 registrants (citizen key -> id)  4 stream
--       5 bucket:global  6 bucket:ip  7 bucket:citizen (the campaign's rate
--       limits, as for reservations: token_bucket.lua)
-- ARGV: 1 registration id  2 citizen key  3 preferences (comma-separated)
--       4 stream entries max (the hand-off's bound)
-- Returns created_ms | {'not_found'} | {'campaign_not_open'}
--       | {'citizen_limit_reached', the first registration's id}
--       | {'rate_limited', bucket, retry_after_s, rate, burst}
--       | {'backlog_full'} | {'misconfigured', what}
-- Record: <citizen key>|<preferences>|<created ms> (RegistrationRecord);
-- stream entry: one field, 'g' = '<id>|<record>' (StreamEntries.swift).

local rid, ckey, preferences = ARGV[1], ARGV[2], ARGV[3]
local cfg = redis.call('HMGET', KEYS[1], 'status', 'opens', 'closes', 'alloc',
  'g_rate', 'g_burst', 'ip_rate', 'ip_burst', 'c_rate', 'c_burst')
if not cfg[1] then return {'not_found'} end
local opens, closes = tonumber(cfg[2]), tonumber(cfg[3])
if not opens or not closes then return {'misconfigured', 'campaign'} end
local time = redis.call('TIME')
local now_us = tonumber(time[1]) * 1000000 + tonumber(time[2])
local now_ms = math.floor(now_us / 1000)
if cfg[4] ~= 'lottery' or cfg[1] ~= 'open' or now_ms < opens or now_ms >= closes then return {'campaign_not_open'} end
local limited, spent = buckets_take({cfg[5], cfg[6], cfg[7], cfg[8], cfg[9], cfg[10]}, {KEYS[5], KEYS[6], KEYS[7]}, now_us)
if limited then return limited end
if redis.call('XLEN', KEYS[4]) >= tonumber(ARGV[4]) then return {'backlog_full'} end
-- Past the buckets: the attempt spends its tokens, registered or not.
buckets_spend(spent)
local first = redis.call('HGET', KEYS[3], ckey)
if first then return {'citizen_limit_reached', first} end

local record = ckey .. '|' .. preferences .. '|' .. now_ms
redis.call('HSET', KEYS[3], ckey, rid)
redis.call('HSET', KEYS[2], rid, record)
redis.call('XADD', KEYS[4], '*', 'g', rid .. '|' .. record)
return now_ms
