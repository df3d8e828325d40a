-- waitlist.lua: first-come waitlists (issue 14). Not a script of its own:
-- Scripts.swift puts it in front of the functions, before holds.lua (whose
-- record_move offers a place given back to the first in line).
--
-- A campaign with a waitlist (cfg 'wl_offer' > 0: an offer's hold, in ms)
-- has a line in each bucket, for the citizens of that bucket (their
-- holdings are there: an offer checks and takes them in one step), all of
-- it under the bucket's tag: 'wl' (entry id -> record), 'wlby' (citizen
-- key -> their latest entry), a queue per slot and per site,
-- '<prefix>:wq:<slot>' and '<prefix>:wq:site:<site>' (entry ids by join
-- order), 'wlseq' (the join counter), 'wlq' (the targets with a queue),
-- 'wlsite' (slot -> site, every slot's: AdminStore.swift) and 'wlss:<site>'
-- (each site's slots).
-- A record (WaitlistRecord.swift): status|target|citizen key|joined ms|
-- offer's reservation id|offer's pickup code|updated ms, status one of
-- waiting, offered, left, passed. The offer's id and code are made at
-- the join (ids carry a route only the server can make).
local function waitlist_parse(text)
  local status, target, ckey, joined, rid, code, updated =
    string.match(text or '', '^([^|]+)|([^|]+)|([^|]+)|([^|]+)|([^|]+)|([^|]+)|([^|]+)$')
  if not status then return nil end
  return {status = status, target = target, ckey = ckey, joined = joined, rid = rid, code = code, updated = updated}
end

-- Writes entry `id` as `w` says, and its event to the stream (field 'w').
local function waitlist_write(k, id, w, now_ms)
  local text = w.status .. '|' .. w.target .. '|' .. w.ckey .. '|' .. w.joined .. '|' .. w.rid .. '|' .. w.code .. '|' .. now_ms
  redis.call('HSET', k.waitlist, id, text)
  redis.call('XADD', k.stream, '*', 'w', id .. '|' .. text)
  return text
end

-- Whether anyone waits in the line under `prefix` (a bucket's) for `slot`,
-- or for its `site` when one is given: the places of that slot on sale
-- there are theirs (reserve.lua and waitlist_join.lua refuse others,
-- debit.lua moves none away).
local function waitlist_waits(prefix, slot, site)
  if redis.call('ZCARD', prefix .. ':wq:' .. slot) > 0 then return true end
  return site ~= nil and redis.call('ZCARD', prefix .. ':wq:site:' .. site) > 0
end

-- The queues entry `id` (its record read as `w`) waits in: a lottery
-- entry's, one per preference (its registration's, under `prefix`);
-- else its target's.
local function waitlist_queues(prefix, id, w)
  local registration = redis.call('HGET', prefix .. ':regs', id)
  local preferences = registration and string.match(registration, '^[^|]*|([^|]*)|')
  if not preferences then return {prefix .. ':wq:' .. w.target} end
  local queues = {}
  for preference in string.gmatch(preferences, '[^,]+') do queues[#queues + 1] = prefix .. ':wq:' .. preference end
  return queues
end

-- A place of `slot` (at `site`) was just given back, or is on sale while
-- some wait (waitlist_serve, waitlist_offer_left; its remaining >= 1):
-- it is offered to whoever is first of the slot's and the site's queues,
-- as a hold of the campaign's offer length, unless the campaign is not
-- open (no offers after it closes: the place stays on sale). One who can
-- no longer take it (at their limit, or holding another place) is passed
-- over, at most 20 a time; entries no longer waiting (offered from
-- another of their queues, or left) are dropped on the way, at most 1000
-- a time (each is dropped once, ever). `k` as record_move's, with cfg,
-- waitlist (nil: none) and prefix. Returns true when an offer was made.
-- A lottery with holds has a line too: its entries not drawn, each in the
-- queue of each of its preferences by rank (lottery_line.lua); its
-- registration window closed before the draw, so offers go on while its
-- status is open, and an offer is its registration's award.
local function waitlist_offer(k, slot, site, now_ms)
  if not k.waitlist then return end
  local cfg = redis.call('HMGET', k.cfg, 'status', 'closes', 'wl_offer', 'limit', 'alloc', 'opens')
  local offer_ms, closes, limit = tonumber(cfg[3] or '0'), tonumber(cfg[2]), tonumber(cfg[4])
  local lottery = cfg[5] == 'lottery'
  if not offer_ms or offer_ms <= 0 or cfg[1] ~= 'open' or not closes or not limit then return end
  -- (A first-come campaign moved to open later makes no offers before
  -- then, as it takes no reservations: waitlist_serve offers at opening.)
  if (now_ms >= closes or now_ms < (tonumber(cfg[6]) or 0)) and not lottery then return end
  local queues = {k.prefix .. ':wq:' .. slot, k.prefix .. ':wq:site:' .. site}
  local passed, dropped = 0, 0
  while passed < 20 and dropped < 1000 do
    local first, first_queue, first_score = nil, nil, nil
    for _, queue in ipairs(queues) do
      local head = redis.call('ZRANGE', queue, 0, 0, 'WITHSCORES')
      if head[1] and (not first_score or tonumber(head[2]) < first_score) then
        first, first_queue, first_score = head[1], queue, tonumber(head[2])
      end
    end
    if not first then return end
    redis.call('ZREM', first_queue, first)
    local w = waitlist_parse(redis.call('HGET', k.waitlist, first))
    -- A lottery entry leaves all its queues at its turn (offered or passed
    -- over), so a place in line counts only those still waiting.
    if lottery and w then
      for _, queue in ipairs(waitlist_queues(k.prefix, first, w)) do redis.call('ZREM', queue, first) end
    end
    if w and w.status == 'waiting' then
      -- (An offer's id already in the records: offered before, its entry
      -- put back in line by a recovery; never written over.)
      if tonumber(redis.call('HGET', k.holdings, w.ckey) or '0') < limit and redis.call('HEXISTS', k.holders, w.ckey) == 0
          and redis.call('HEXISTS', k.records, w.rid) == 0 then
        local expires = now_ms + offer_ms
        local record = 'held|' .. slot .. '|' .. site .. '|' .. w.code .. '|' .. w.ckey .. '|' .. now_ms .. '|' .. now_ms .. '|' .. expires
        redis.call('HINCRBY', k.remaining, slot, -1)
        redis.call('HINCRBY', k.holdings, w.ckey, 1)
        redis.call('HSET', k.records, w.rid, record)
        redis.call('ZADD', k.holds, expires, w.rid)
        redis.call('HSET', k.holders, w.ckey, w.rid)
        redis.call('XADD', k.stream, '*', 'e', w.rid .. '|' .. record, 'a', 'waitlist')
        if lottery then redis.call('HSET', k.prefix .. ':awards', first, w.rid) end
        w.status = 'offered'
        waitlist_write(k, first, w, now_ms)
        return true
      end
      w.status = 'passed'
      waitlist_write(k, first, w, now_ms)
      passed = passed + 1
    else
      dropped = dropped + 1
    end
  end
  return false
end

-- A lottery with holds: places left over (given back while it was paused,
-- or before its line was there) are offered to the line, `max` at most, as
-- if each had just been given back. Nothing else would: a lottery takes no
-- reservations. Returns how many were offered.
local function waitlist_offer_left(k, slots_key, now_ms, max)
  if not k.waitlist or redis.call('HGET', k.cfg, 'alloc') ~= 'lottery' then return 0 end
  local offered = 0
  local left = redis.call('HGETALL', k.remaining)
  for i = 1, #left, 2 do
    local slot, count = left[i], tonumber(left[i + 1]) or 0
    if count > 0 then
      local site = string.match(redis.call('HGET', slots_key, slot) or '', '"site_id":"([^"]+)"')
      while site and count > 0 and offered < max and waitlist_offer(k, slot, site, now_ms) do
        count = count - 1
        offered = offered + 1
      end
    end
  end
  return offered
end

-- A first-come line served from places on sale: a capacity raised, a
-- campaign resumed or opened, places moved into this bucket for its line
-- from another (HoldSweeper.swift), offers skipped while it was paused,
-- or a give-back whose offer passed over its 20. Each target with a queue
-- (k.wtargets) is offered its slots' places here: `calls` offers tried
-- at most (each passes over 20 at most). Returns how many were offered,
-- and the targets still waiting with no place of theirs in this bucket (a
-- spread campaign's node moves places here for them). It runs every
-- sweep in every bucket with a line, so it reads only the targets' slots
-- (a site's from its set, '<prefix>:wlss:<site>').
local function waitlist_serve(k, now_ms, calls)
  local offered, wanting = 0, {}
  local targets = redis.call('SMEMBERS', k.wtargets)
  if #targets == 0 then return 0, wanting end
  local cfg = redis.call('HMGET', k.cfg, 'status', 'opens', 'closes')
  if cfg[1] ~= 'open' or now_ms < (tonumber(cfg[2]) or 0) or now_ms >= (tonumber(cfg[3]) or 0) then return 0, wanting end
  for _, target in ipairs(targets) do
    local queue = k.prefix .. ':wq:' .. target
    if redis.call('ZCARD', queue) == 0 then
      redis.call('SREM', k.wtargets, target)
    else
      local site = string.match(target, '^site:(.+)$')
      local slots = site and redis.call('SMEMBERS', k.prefix .. ':wlss:' .. site) or {target}
      local placed = false
      for _, slot in ipairs(slots) do
        local left = tonumber(redis.call('HGET', k.remaining, slot) or '0') or 0
        if left > 0 then
          local slot_site = redis.call('HGET', k.wsites, slot)
          if site and slot_site ~= site then
            -- Moved to another site since: no longer this site's.
            redis.call('SREM', k.prefix .. ':wlss:' .. site, slot)
            left = 0
          end
          while slot_site and calls > 0 and left > 0 do
            calls = calls - 1
            if not waitlist_offer(k, slot, slot_site, now_ms) then break end
            left = left - 1
            offered = offered + 1
          end
          if left > 0 then placed = true end
        end
      end
      if not placed and redis.call('ZCARD', queue) > 0 then wanting[#wanting + 1] = target end
    end
  end
  return offered, wanting
end
