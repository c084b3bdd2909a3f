-- An allowed attempt failed. KEYS: failures, lock. ARGV: max, lockout, now.
-- The lock's end once `max` are counted, else 0.
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  local ends = tonumber(ARGV[3]) + tonumber(ARGV[2])
  redis.call('SET', KEYS[2], string.format('%.0f', ends), 'EX', ARGV[2])
  return ends
end
return 0
