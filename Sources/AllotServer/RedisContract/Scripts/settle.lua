-- settle.lua: the last of a move's three steps (PlaceTransfer.swift), on
-- the source: the record goes, and a mark with the places moved stays a
-- while, so a debit of the same id sent again takes nothing more.
--
-- KEYS: 1 source's moves (id -> record)  2 the move's settled mark
-- ARGV: 1 move id  2 places moved  3 the mark's life in seconds
-- Returns 1 when the record was there, 0 when it was settled already.

redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
return redis.call('HDEL', KEYS[1], ARGV[1])
