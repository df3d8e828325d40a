-- token_bucket.lua: the token bucket maths, the same formulas as
-- AllotDomain/TokenBucket.swift (the tests run both on one set of vectors).
-- Not a script of its own: Scripts.swift puts it in front of reserve.lua.
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
