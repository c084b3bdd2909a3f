-- Rotates a refresh token. KEYS: session. ARGV: presented, next, ttl.
-- 0 unknown session, 1 reused (spent) token, 2 rotated.
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
if cur ~= ARGV[1] then return 1 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 2
