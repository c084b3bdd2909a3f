-- The rig's wrk script (../shared/bench/wrk/cred.lua), as rig.sh installs it in its scratch copy:
-- the same pre-formatted requests cycled through, plus two things for the `dpop` scenario.
--   A line "<token>\t<proof>" is sent as `Authorization: <prefix><token>` and `DPoP: <proof>`.
--   With a file "<cred file>.next", each run starts at the line it names and leaves the next
--   unused one there: a proof is single use, so warm-up and measurement never send one twice.
local file   = os.getenv("BENCH_CRED_FILE")
local header = os.getenv("BENCH_CRED_HEADER") or "Authorization"
local prefix = os.getenv("BENCH_CRED_PREFIX") or ""
local path   = os.getenv("BENCH_PATH") or "/"
local reqs, n, i = {}, 0, 0
local start = 0

local function read_start()
  if not file or file == "" then return 0 end
  local f = io.open(file .. ".next")
  if not f then return 0 end
  local s = tonumber(f:read("*l")) or 0
  f:close()
  return s
end

function init(args)
  local host = wrk.headers["Host"]
  start = read_start()
  if file and file ~= "" then
    local line_no = 0
    for line in io.lines(file) do
      line_no = line_no + 1
      if #line > 0 and line_no > start then
        n = n + 1
        local token, proof = line:match("^([^\t]*)\t(.*)$")
        if token then
          reqs[n] = wrk.format("GET", path, { ["Host"] = host, [header] = prefix .. token, ["DPoP"] = proof })
        else
          reqs[n] = wrk.format("GET", path, { ["Host"] = host, [header] = prefix .. line })
        end
      end
    end
  end
  if n == 0 then
    n = 1
    reqs[1] = wrk.format("GET", path, { ["Host"] = host })
  end
end

function request()
  i = i % n + 1
  return reqs[i]
end

function done(summary, latency, requests)
  if not file or file == "" then return end
  local f = io.open(file .. ".next")
  if not f then return end
  f:close()
  -- Requests sent but not answered (timeouts, the run's end) may have been read: skip them too.
  local used = summary.requests + summary.errors.timeout + 1000
  f = io.open(file .. ".next", "w")
  f:write(tostring(read_start() + used) .. "\n")
  f:close()
end
