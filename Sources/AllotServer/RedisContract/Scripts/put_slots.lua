-- put_slots.lua: upsert slots with their capacities, live.
-- For a slot that exists, `remaining` moves by the capacity difference and
-- never below 0: capacity is raised to the places already taken if the
-- operator asks for less, so nothing confirmed is ever oversold. (With
-- several buckets `remaining` is the pool: places handed to a bucket count
-- as taken here, AdminStore.pushSlots.)
--
-- KEYS: 1 cfg  2 remaining  3 capacity  4 slot metadata
-- ARGV: triples of slot id, requested capacity, metadata JSON
-- Returns the effective capacities, in ARGV order.

local effective = {}
for i = 1, #ARGV, 3 do
  local slot, wanted, meta = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  local cap = tonumber(redis.call('HGET', KEYS[3], slot) or '-1')
  local capacity = wanted
  if cap < 0 then
    redis.call('HSET', KEYS[2], slot, wanted)
  else
    local taken = cap - tonumber(redis.call('HGET', KEYS[2], slot) or cap)
    capacity = math.max(wanted, taken)
    redis.call('HSET', KEYS[2], slot, capacity - taken)
  end
  redis.call('HSET', KEYS[3], slot, capacity)
  if meta ~= '' then redis.call('HSET', KEYS[4], slot, meta) end
  effective[#effective + 1] = capacity
end
redis.call('HINCRBY', KEYS[1], 'ver', 1)
return effective
