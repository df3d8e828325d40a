-- waitlist_leave.lua: a citizen leaves the waitlist (issue 14). Only a
-- waiting entry leaves; an offer is a hold, cancelled as a reservation is.
--
-- KEYS: 1 waitlist  2 waiters  3 stream
-- ARGV: 1 entry id  2 the campaign's key prefix (its queues are named from
--       it, under the same tag)  3 stream entries max
-- Returns {'ok', record} | {'not_found'} | {'refused', record} | {'backlog_full'}

local id = ARGV[1]
local text = redis.call('HGET', KEYS[1], id)
if not text then return {'not_found'} end
local w = waitlist_parse(text)
if not w then return {'unreadable_record'} end
if w.status ~= 'waiting' then return {'refused', text} end
if redis.call('XLEN', KEYS[3]) >= tonumber(ARGV[3]) then return {'backlog_full'} end
local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
-- Out of every queue it waits in (a lottery entry's: one per preference).
for _, queue in ipairs(waitlist_queues(ARGV[2], id, w)) do redis.call('ZREM', queue, id) end
if redis.call('HGET', KEYS[2], w.ckey) == id then redis.call('HDEL', KEYS[2], w.ckey) end
w.status = 'left'
return {'ok', waitlist_write({waitlist = KEYS[1], stream = KEYS[3]}, id, w, now_ms)}
