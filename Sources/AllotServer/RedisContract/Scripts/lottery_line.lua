-- lottery_line.lua: a drawn lottery with holds puts its entries not drawn
-- in line, a batch at a time (issue 14: "the lottery order is the
-- waitlist"). Each entry waits in the queue of each of its preferences,
-- by rank; a winner's place not confirmed in time is offered to the best
-- ranked entry that asked for its slot or its site (waitlist.lua). Once
-- per entry: a batch sent again (a draw run again) changes nothing. The
-- entries are not written to the stream here: SQLite has them as the
-- draw's (draw_entries); an offer is (waitlist.lua).
--
-- KEYS: 1 cfg  2 waitlist  3 waiters
-- ARGV: 1 the campaign's key prefix (the queues are named from it, under
--       the same tag)  2 now ms, then per entry six values: registration
--       id, citizen key, preferences (comma-separated), the offer's
--       reservation id, its pickup code, rank
-- Returns how many entries joined the line.

local cfg = redis.call('HMGET', KEYS[1], 'alloc')
if cfg[1] ~= 'lottery' then return redis.error_reply('not a lottery') end
local prefix, now_ms, added = ARGV[1], ARGV[2], 0
for i = 3, #ARGV, 6 do
  local id, ckey, preferences, rid, code, rank = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  -- (An entry without preferences could be offered nothing: left out.)
  local first = string.match(preferences, '^[^,]+')
  if first and redis.call('HEXISTS', KEYS[2], id) == 0 then
    redis.call('HSET', KEYS[2], id, 'waiting|' .. first .. '|' .. ckey .. '|' .. now_ms .. '|' .. rid .. '|' .. code .. '|' .. now_ms)
    redis.call('HSET', KEYS[3], ckey, id)
    for preference in string.gmatch(preferences, '[^,]+') do
      redis.call('ZADD', prefix .. ':wq:' .. preference, tonumber(rank), id)
    end
    added = added + 1
  end
end
return added
