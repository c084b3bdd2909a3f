-- One request per distinct client IP, told through X-Forwarded-For (the gateway trusts
-- 127.0.0.1): 10.0.0.0 upwards, FLOOD_IPS distinct addresses, then round again.
local total = tonumber(os.getenv("FLOOD_IPS") or "1000000")
local n = -1

function request()
  n = (n + 1) % total
  local ip = string.format("10.%d.%d.%d", math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
  return wrk.format("GET", "/flood", { ["X-Forwarded-For"] = ip })
end
