-- wrk script: random P2P transfers against the reference wallet, one unique Idempotency-Key
-- per request. Tokens come from a file of "<account_id> <token>" lines (bench/wallet_load.py
-- writes it after logging every seeded user in):
--
--   wrk -t1 -c32 -d10s -s bench/wallet_load.lua http://127.0.0.1:8001 -- tokens.txt [max_amount]
--
-- At the end it prints one line "wallet_load: {json}" with the status counts of all threads,
-- which the driver parses (201 = transfers applied).

local users = {}        -- { {id=, auth=} ... }
local counter = 0
counts = {}             -- status -> count, per thread (global: done() reads it)
local max_amount = 100
local prefix = ""

local function load_tokens(path)
  local list = {}
  local fh = assert(io.open(path, "r"), "cannot open token file " .. tostring(path))
  for line in fh:lines() do
    local id, token = line:match("^(%d+)%s+(%S+)$")
    if id then
      list[#list + 1] = { id = id, auth = "Bearer " .. token }
    end
  end
  fh:close()
  assert(#list >= 2, "need at least two users in " .. path)
  return list
end

local thread_number = 0
local threads = {}
function setup(thread)
  thread_number = thread_number + 1
  thread:set("thread_number", thread_number)
  threads[#threads + 1] = thread
end

function init(args)
  users = load_tokens(args[1])
  if args[2] then max_amount = tonumber(args[2]) end
  -- unique across threads, wrk processes and runs: thread number, pid-ish entropy, time
  local seed = os.time() * 1000 + (thread_number or 0) * 7919 + math.floor(os.clock() * 1e6)
  math.randomseed(seed)
  prefix = string.format("wrk-%d-%d-%d-", os.time(), thread_number or 0, math.random(1, 1e9))
end

function request()
  counter = counter + 1
  local n = #users
  local i = math.random(1, n)
  local j = math.random(1, n - 1)
  if j >= i then j = j + 1 end
  local body = string.format('{"to_account":%s,"amount":%d}', users[j].id,
                             math.random(1, max_amount))
  local headers = {
    ["Authorization"] = users[i].auth,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = prefix .. counter,
  }
  return wrk.format("POST", "/v1/transfers", headers, body)
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("counts") or {}) do
      total[status] = (total[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(total) do
    parts[#parts + 1] = string.format('"%s":%d', status, n)
  end
  io.write(string.format(
    'wallet_load: {"requests":%d,"duration_us":%d,"errors":%d,"statuses":{%s},'
      .. '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout + summary.errors.status,
    table.concat(parts, ","),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
