-- wrk script: every request is a new citizen, with a valid cn-resident id
-- number (GB 11643: area, birth date, sequence, ISO 7064 check character),
-- reserving one of 100 slots. Used by scripts/bench.sh; `wrk -s reserve.lua`
-- with WRK_CAMPAIGN set.
local counter = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

local weights = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
local checks = {"1", "0", "X", "9", "8", "7", "6", "5", "4", "3", "2"}
local days = 36500  -- birth dates from 1920-01-01, made once

function init(args)
  -- Runs against one server differ by their start time (or WRK_RUN).
  first = ((tonumber(os.getenv("WRK_RUN") or "") or os.time()) % 100000) * 4000000
  campaign = os.getenv("WRK_CAMPAIGN") or "bench"
  path = "/v1/campaigns/" .. campaign .. "/reservations"
  headers = {["Content-Type"] = "application/json"}
  dates = {}
  for day = 0, days - 1 do dates[day] = os.date("!%Y%m%d", -1577923200 + day * 86400) end
end

-- The n-th id of this thread: unique per thread (the thread number is the
-- sequence's last digit, so threads never meet), valid by its check digit;
-- n runs on from `first`.
local function citizenID(n)
  local floor = math.floor  -- (LuaJIT: no integer division operator)
  local area = 110000 + floor(n / (days * 100)) % 890000
  local body = string.format("%06d%s%02d%d", area, dates[n % days], floor(n / days) % 100, tid % 10)
  local sum = 0
  for i = 1, 17 do sum = sum + (body:byte(i) - 48) * weights[i] end
  return body .. checks[sum % 11 + 1]
end

function request()
  counter = counter + 1
  local body = '{"citizen_id":"' .. citizenID(first + counter) .. '","slot_id":"s' .. (counter % 100) .. '"}'
  return wrk.format("POST", path, headers, body)
end

local statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
