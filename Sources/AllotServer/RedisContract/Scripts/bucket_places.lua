-- bucket_places.lua: a bucket's places for a loop's snapshot (Catalog.swift),
-- moves out of it included (places.lua).
--
-- KEYS: 1 the bucket's remaining  2 its moves
-- Returns field/value pairs.

return places_with_moves(KEYS[1], KEYS[2])
