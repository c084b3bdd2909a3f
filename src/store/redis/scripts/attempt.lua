-- Counts an attempt before it is evaluated. KEYS: failures, lock. ARGV: max, lockout, now.
-- {1, 0} allowed; {0, until} refused: locked, or `max` counted already.
local lock = tonumber(redis.call('GET', KEYS[2]) or '0')
if lock > tonumber(ARGV[3]) then return {0, lock} end
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then
  return {0, tonumber(ARGV[3]) + math.max(redis.call('TTL', KEYS[1]), 1)}
end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return {1, 0}
