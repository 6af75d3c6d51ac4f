-- wrk script: webchat messages across many conversations (bench/api/run.sh).
-- Each wrk thread owns every T-th user of USERS and sends to them round-robin, so one
-- user's next message leaves only after hundreds of others: a user never has two requests
-- in flight, and each conversation walks bench/api/flows/survey.json (greeting, two
-- answers, a branch, end) and then starts over.
local users = tonumber(os.getenv("FLOWRT_BENCH_USERS") or "1000")
local script = {"hi", "7", "2"}
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  mine = {}
  step = {}
  local total = tonumber(os.getenv("FLOWRT_BENCH_THREADS") or "2")
  for u = id, users - 1, total do
    table.insert(mine, u)
    step[u] = 0
  end
  next_user = 1
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local u = mine[next_user]
  next_user = next_user % #mine + 1
  local text = script[step[u] % #script + 1]
  step[u] = step[u] + 1
  local body = string.format('{"user": "bench-%d", "text": "%s"}', u, text)
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local non2xx = summary.errors.status
  io.write(string.format(
      "RESULT requests=%d seconds=%.1f rps=%.0f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f non2xx=%d socket_errors=%d\n",
      summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
      latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency.max / 1000, non2xx,
      summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
