-- places.lua (a prelude of the library): a slot's places as a snapshot
-- counts them, from where places wait (a bucket's remaining, or the pool)
-- plus those moving out of there (moves recorded by debit.lua and not yet
-- settled): a place on its way between shards is not a place sold.
-- Returns field/value pairs, as HGETALL does.

local function places_with_moves(places_key, moves_key)
  local counts, order = {}, {}
  local pairs_ = redis.call('HGETALL', places_key)
  for i = 1, #pairs_, 2 do
    counts[pairs_[i]] = tonumber(pairs_[i + 1]) or 0
    order[#order + 1] = pairs_[i]
  end
  for _, record in ipairs(redis.call('HVALS', moves_key)) do
    local slot, count = string.match(record, '^([^|]+)|(%d+)|')
    if slot then
      if not counts[slot] then order[#order + 1] = slot; counts[slot] = 0 end
      counts[slot] = counts[slot] + tonumber(count)
    end
  end
  local out = {}
  for _, slot in ipairs(order) do
    out[#out + 1] = slot
    out[#out + 1] = tostring(counts[slot])
  end
  return out
end
