-- Rotates a refresh token. KEYS: session. ARGV: presented, next, ttl, grace, now.
-- The value is the current jti, and within the reuse grace "current spent spent_at": the one
-- it replaced and when (a value without them, as older versions wrote, is just current).
-- {0} unknown session, {1} reused (spent) token, {2} rotated (each with ''), {3, current}
-- spent within the grace: its successor, unless that was rotated in turn.
local v = redis.call('GET', KEYS[1])
if not v then return {0, ''} end
local cur, spent, at = string.match(v, '^(%S+) (%S+) (%d+)$')
if not cur then cur = v end
if cur == ARGV[1] then
  local value = ARGV[2]
  if tonumber(ARGV[4]) > 0 then
    value = ARGV[2] .. ' ' .. ARGV[1] .. ' ' .. ARGV[5]
  end
  redis.call('SET', KEYS[1], value, 'EX', ARGV[3])
  return {2, ''}
end
if spent == ARGV[1] and tonumber(ARGV[5]) <= tonumber(at) + tonumber(ARGV[4]) then
  return {3, cur}
end
return {1, ''}
