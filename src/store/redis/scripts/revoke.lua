-- Records a revocation and publishes it. KEYS: version, by_until, by_version.
-- ARGV: member, until (the by_until score), channel, ttl (the keys keep at least this).
local v = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], v, ARGV[1])
local ttl = tonumber(ARGV[4])
for i = 1, 3 do
  if redis.call('TTL', KEYS[i]) < ttl then redis.call('EXPIRE', KEYS[i], ttl) end
end
redis.call('PUBLISH', ARGV[3], v .. '\t' .. ARGV[1])
return v
