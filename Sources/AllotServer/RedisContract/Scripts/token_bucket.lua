-- token_bucket.lua: the token bucket maths, the same formulas as
-- AllotDomain/TokenBucket.swift (the tests run both on one set of vectors).
-- Not a script of its own: Scripts.swift puts it in front of the library's
-- functions (reserve.lua and register.lua take tokens).
--
-- bucket_take(tokens, updated_us, rate, burst, now_us): tokens and
-- updated_us are the stored state (nil: a full bucket, new). Refills for
-- the time passed (a clock going backwards adds nothing), then needs one
-- whole token. Returns taken, tokens left, the time stamp to store,
-- Retry-After seconds (when not taken) and the key's expiry in ms (when
-- taken: the time to be full again, after which a missing key is the same
-- as a full bucket). The API's ranges (rate 0.001..1e6, burst 1..1e7) keep
-- every one of them below 1e13: exact in a double, fine for PEXPIRE.
local function bucket_whole(value)
  if value ~= value or value <= 1 then return 1 end
  return math.min(math.ceil(value), 1e15)
end

local function bucket_take(tokens, updated_us, rate, burst, now_us)
  tokens = tokens or burst
  updated_us = updated_us or now_us
  tokens = math.min(burst, tokens + math.max(0, now_us - updated_us) / 1000000 * rate)
  local stamp = math.max(updated_us, now_us)
  if tokens < 1 then
    return false, tokens, stamp, bucket_whole((1 - tokens) / rate), 0
  end
  tokens = tokens - 1
  return true, tokens, stamp, 0, bucket_whole(math.max(0, burst - tokens) / rate * 1000) + 1000
end

-- buckets_take(limits, keys, now_us): a campaign's configured buckets, each
-- needing a whole token. limits: the config hash's rate and burst texts of
-- the global, ip and citizen buckets, in that order (six values, nil for an
-- unlimited bucket); keys: the three buckets' keys. A bucket's state is one
-- string value, '<tokens> <updated us>', read for all of them in one MGET.
-- Writes nothing: returns a refusal reply ({'rate_limited', bucket,
-- retry_after_s, rate, burst} or {'misconfigured', bucket}), or nil and
-- what buckets_spend writes once the caller's other checks have passed.
local bucket_names = {'global', 'ip', 'citizen'}
local function buckets_take(limits, keys, now_us)
  local spent, states = {}, nil
  for index = 1, 3 do
    local name, rate_text, burst_text = bucket_names[index], limits[2 * index - 1], limits[2 * index]
    if rate_text then
      local rate, burst = tonumber(rate_text), tonumber(burst_text)
      -- Operators can only set values in these ranges (BucketPolicy); anything
      -- else in the hash is refused before a single write.
      if not rate or not burst or rate < 0.001 or rate > 1000000 or burst < 1 or burst > 10000000
          or burst ~= math.floor(burst) then
        return {'misconfigured', name}
      end
      if not states then states = redis.call('MGET', keys[1], keys[2], keys[3]) end
      local stored_tokens, stored_stamp
      if states[index] then
        local space = string.find(states[index], ' ', 1, true)
        if space then
          stored_tokens = tonumber(string.sub(states[index], 1, space - 1))
          stored_stamp = tonumber(string.sub(states[index], space + 1))
        end
      end
      local taken, tokens, stamp, retry, ttl = bucket_take(stored_tokens, stored_stamp, rate, burst, now_us)
      if not taken then return {'rate_limited', name, retry, rate_text, burst_text} end
      spent[#spent + 1] = {keys[index], tokens, stamp, ttl}
    end
  end
  return nil, spent
end

-- %.17g keeps a double exact: the bucket maths reads back what it stored.
local function buckets_spend(spent)
  for _, bucket in ipairs(spent) do
    redis.call('SET', bucket[1], string.format('%.17g %.17g', bucket[2], bucket[3]), 'PX', bucket[4])
  end
end
