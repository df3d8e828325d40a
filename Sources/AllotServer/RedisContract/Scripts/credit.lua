-- credit.lua: the second of a move's three steps (PlaceTransfer.swift): adds
-- the places to the target bucket once per move id, whoever runs it (the
-- node that debited, or the sweeper finishing a move it left).
--
-- KEYS: 1 target places (slot -> places)  2 the move's credit mark
-- ARGV: 1 slot  2 places  3 the mark's life in seconds (longer than any
--       move may wait for the sweeper)
-- Returns 1 when the places were added now, 0 when they had been already.

if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[3]) then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], tonumber(ARGV[2]))
return 1
