-- wrk script: every request is a new citizen reserving one of 100 slots.
-- Used by scripts/bench.sh; `wrk -s reserve.lua` with WRK_CAMPAIGN set.
local counter = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  run = os.getenv("WRK_RUN") or tostring(os.time())
  campaign = os.getenv("WRK_CAMPAIGN") or "bench"
  path = "/v1/campaigns/" .. campaign .. "/reservations"
  headers = {["Content-Type"] = "application/json"}
end

function request()
  counter = counter + 1
  local body = '{"citizen_id":"r' .. run .. 't' .. tid .. '-' .. counter .. '","slot_id":"s' .. (counter % 100) .. '"}'
  return wrk.format("POST", path, headers, body)
end

local statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
