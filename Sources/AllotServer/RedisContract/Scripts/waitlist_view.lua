-- waitlist_view.lua: a waitlist entry and, while it waits, its place in
-- line (1 first), in one read (issue 14).
--
-- KEYS: 1 waitlist
-- ARGV: 1 entry id  2 the queues' prefix ('<prefix>:wq:')
-- Returns {record, position | false} | {false}

local text = redis.call('HGET', KEYS[1], ARGV[1])
if not text then return {false} end
local w = waitlist_parse(text)
if not w or w.status ~= 'waiting' then return {text, false} end
local rank = redis.call('ZRANK', ARGV[2] .. w.target, ARGV[1])
return {text, rank and rank + 1 or false}
