-- waitlist_view.lua: a waitlist entry and, while it waits, its place in
-- line (1 first), in one read (issue 14): in the queue of its target, or
-- for a lottery entry the best of its preferences' queues.
--
-- KEYS: 1 waitlist
-- ARGV: 1 entry id  2 the campaign's key prefix (the queues and a
--       lottery's registrations are named from it, under the same tag)
-- Returns {record, position | false} | {false}

local text = redis.call('HGET', KEYS[1], ARGV[1])
if not text then return {false} end
local w = waitlist_parse(text)
if not w or w.status ~= 'waiting' then return {text, false} end
local best = false
for _, queue in ipairs(waitlist_queues(ARGV[2], ARGV[1], w)) do
  local rank = redis.call('ZRANK', queue, ARGV[1])
  if rank and (not best or rank + 1 < best) then best = rank + 1 end
end
return {text, best}
