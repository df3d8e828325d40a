-- reserve.lua: one reservation attempt, atomically (DESIGN.md "The shape").
--
-- Every check comes before the first write: Redis does not roll a script
-- back when it fails half-way, so a half-done attempt must be impossible by
-- construction. All keys share the campaign's hash tag {c:<cid>}.
--
-- KEYS: 1 cfg  2 remaining  3 holdings  4 stats (unused: refusals are counted
--       by the loops)  5 records  6 stream
--       7 bucket:global  8 bucket:ip  9 bucket:citizen  10 idempotency
--       11 the citizen's series ledger (a series' campaign; else never touched)
--       12 holds (reservation id -> expiry ms)  13 holders (citizen key ->
--          their hold's id): a campaign with holds only (cfg 'hold' > 0)
-- ARGV: 1 slot  2 site  3 reservation id  4 pickup code  5 citizen key
--       6 idempotency fingerprint ('' = no key)  7 idempotency ttl seconds
--       8 stream entries max (the hand-off's bound)
--       9 '' for a campaign of one bucket; for a bucket of a spread one,
--         'try' (its empty slot may be refilled, PlaceTransfer.swift: it
--         answers 'bucket_empty' and writes nothing, not 'slot_full'), or
--         'spread' (the attempt after a refill: its 'slot_full' is the
--         answer). A bucket without a slot's field has none of its places.
--       10 the series' limit ('' = not in a series)  11 its window in ms
-- A campaign with a waitlist (cfg 'wl_offer' > 0) sells no place while its
-- slot's or site's line in this bucket has anyone in it.
-- A campaign with holds (cfg 'hold', ms) makes a hold, not a reservation:
-- it takes the place until its expiry, and is confirmed or ends
-- (transition.lua, expire.lua). One hold per citizen at a time.
-- Returns created_ms, a bare integer (the commonest reply: hiredis reads it
--       in one allocation, not four) | {'held', created_ms, expires_ms}
--       | {'replay', stored answer} | {'idempotency_conflict'} | {'hold_pending'}
--       | {'not_found', what} | {'campaign_not_open'} | {'slot_full'}
--       | {'slot_full', 'line'} (places here kept for the waitlist)
--       | {'citizen_limit_reached', limit} | {'not_eligible', 'series_limit'}
--       | {'rate_limited', bucket, retry_after_s, rate, burst}
--       | {'backlog_full'} | {'bucket_empty'} | {'misconfigured', what}
-- (decoded in RedisContract/ScriptOutcomes.swift; a function of the library
-- Scripts.swift makes, after token_bucket.lua)

local slot, site, rid, code, ckey = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local fingerprint, idem_ttl, stream_max = ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8])
local may_refill, spread = ARGV[9] == 'try', ARGV[9] ~= ''
local time = redis.call('TIME')
local now_us = tonumber(time[1]) * 1000000 + tonumber(time[2])
local now_ms = math.floor(now_us / 1000)
-- The same time as text, cut from TIME's own digits: Lua would format the
-- number with sprintf on every concatenation.
local now_ms_text = time[1] .. string.sub('00000' .. time[2], -6, -4)

-- ---- idempotency: a key seen before answers as it did then ----
if fingerprint ~= '' then
  local prior = redis.call('GET', KEYS[10])
  if prior then
    local bar = string.find(prior, '|', 1, true)
    if not bar then return {'misconfigured', 'idempotency'} end
    if string.sub(prior, 1, bar - 1) ~= fingerprint then return {'idempotency_conflict'} end
    -- A write, so the replay's own connection is at the current replication
    -- offset: with --durability replicated its WAIT then covers the write
    -- the answer replays, whichever connection made it. (It renews the
    -- key's life too: a client still retrying keeps its answer.)
    redis.call('EXPIRE', KEYS[10], idem_ttl)
    return {'replay', string.sub(prior, bar + 1)}
  end
end

local function remember(answer)
  if fingerprint ~= '' then
    redis.call('SET', KEYS[10], fingerprint .. '|' .. answer, 'EX', idem_ttl)
  end
end

-- ---- checks: no writes in this section ----
-- No counter is written here: a refusal writes nothing at all (the loops
-- count refusals and add them to the stats hash in aggregate), and places
-- taken are capacity - remaining (stats.lua).
local cfg = redis.call('HMGET', KEYS[1], 'status', 'opens', 'closes', 'limit',
  'g_rate', 'g_burst', 'ip_rate', 'ip_burst', 'c_rate', 'c_burst', 'hold', 'wl_offer')
if not cfg[1] then return {'not_found', 'campaign'} end
local opens, closes, limit = tonumber(cfg[2]), tonumber(cfg[3]), tonumber(cfg[4])
local hold_ms = tonumber(cfg[11] or '0')
if not opens or not closes or not limit or not hold_ms then return {'misconfigured', 'campaign'} end
if cfg[1] ~= 'open' or now_ms < opens or now_ms >= closes then return {'campaign_not_open'} end

-- Token buckets (token_bucket.lua): each configured one needs a whole token.
-- (The keys are named `:bucket:`; the `:tb:` hashes of older servers are
-- theirs, so two versions sharing one Redis never meet a key of the other
-- type.)
local limited, spent = buckets_take({cfg[5], cfg[6], cfg[7], cfg[8], cfg[9], cfg[10]}, {KEYS[7], KEYS[8], KEYS[9]}, now_us)
if limited then return limited end
-- Read after the buckets, so a bucket's refusal (in a surge the commonest
-- refusal after sold out) costs one call fewer. A slot the loop's snapshot
-- knows but Redis does not is then refused by a bucket first, if one is
-- empty (the loops refuse a slot their snapshot does not know before this).
local remaining = redis.call('HGET', KEYS[2], slot)
if not remaining then
  if not spread then return {'not_found', 'slot'} end
  remaining = '0'
end

local held = tonumber(redis.call('HGET', KEYS[3], ckey) or '0')
-- The series' rolling limit: the citizen's reservations in any campaign of
-- the series made within the window (the ledger is on this shard: every
-- campaign of the series keeps a citizen in the same bucket, RedisKeys.swift).
local series_limit, window_ms = tonumber(ARGV[10]), tonumber(ARGV[11])
local in_window = 0
if series_limit then
  in_window = redis.call('ZCOUNT', KEYS[11], '(' .. (now_ms - window_ms), '+inf')
end
local outcome = 'ok'
-- A pending hold first: the advice (confirm or cancel it) holds at any limit.
if hold_ms > 0 and redis.call('HEXISTS', KEYS[13], ckey) == 1 then outcome = 'hold_pending'
elseif held >= limit then outcome = 'citizen_limit_reached'
elseif series_limit and in_window >= series_limit then outcome = 'series_limit'
elseif tonumber(remaining) <= 0 then
  if may_refill then return {'bucket_empty'} end
  outcome = 'slot_full'
elseif tonumber(cfg[12] or '0') > 0 and waitlist_waits(string.sub(KEYS[1], 1, -5), slot, site) then
  -- A place on sale while some wait for it in this bucket's line (for the
  -- slot or its site) is theirs: the sweep offers it within a period
  -- (waitlist.lua's waitlist_serve). The queues are named from the
  -- bucket's prefix (the cfg key's name without ':cfg'), under its tag.
  outcome = 'line'
elseif redis.call('XLEN', KEYS[6]) >= stream_max then
  -- The persister is this far behind: refuse rather than drop an entry
  -- SQLite has not got (a stream is never trimmed past what is acknowledged).
  return {'backlog_full'}
end

-- ---- writes: the attempt passed every bucket, so it spends its tokens ----
buckets_spend(spent)

if outcome == 'citizen_limit_reached' then
  remember('citizen_limit_reached|' .. limit)
  return {'citizen_limit_reached', limit}
elseif outcome == 'series_limit' then
  remember('not_eligible|series_limit')
  return {'not_eligible', 'series_limit'}
elseif outcome == 'hold_pending' then
  remember('hold_pending')
  return {'hold_pending'}
elseif outcome == 'slot_full' then
  remember('slot_full')
  return {'slot_full'}
elseif outcome == 'line' then
  remember('slot_full')
  return {'slot_full', 'line'}
end

-- The record and the stream entry share one layout (RedisContract/ReservationRecord.swift):
-- status|slot|site|code|citizen key|created ms|updated ms(|expires ms for
-- a hold); the stream entry is one field, 'e' = '<reservation id>|<record>'
-- (StreamEntries.swift).
local body = slot .. '|' .. site .. '|' .. code .. '|' .. ckey .. '|' .. now_ms_text .. '|' .. now_ms_text
local record, expires_ms = nil, now_ms + hold_ms
if hold_ms > 0 then record = 'held|' .. body .. '|' .. expires_ms else record = 'confirmed|' .. body end
redis.call('HINCRBY', KEYS[2], slot, -1)
redis.call('HINCRBY', KEYS[3], ckey, 1)
redis.call('HSET', KEYS[5], rid, record)
redis.call('XADD', KEYS[6], '*', 'e', rid .. '|' .. record)
if series_limit then
  -- Entries past the window are dropped as the ledger is written; the
  -- ledger itself goes a window after its last reservation.
  redis.call('ZREMRANGEBYSCORE', KEYS[11], '-inf', now_ms - window_ms)
  redis.call('ZADD', KEYS[11], now_ms, rid)
  redis.call('PEXPIRE', KEYS[11], window_ms)
end
if hold_ms > 0 then
  redis.call('ZADD', KEYS[12], expires_ms, rid)
  redis.call('HSET', KEYS[13], ckey, rid)
  remember('held|' .. rid .. '|' .. code .. '|' .. now_ms_text .. '|' .. expires_ms)
  return {'held', now_ms, expires_ms}
end
remember('ok|' .. rid .. '|' .. code .. '|' .. now_ms_text)
return now_ms
