-- Counts a code attempt against an MFA token. KEYS: mfa. ARGV: max, now.
-- The username, or false for an unknown, expired or dead token (past `max`, it dies).
local m = redis.call('HMGET', KEYS[1], 'u', 't', 'w')
if not m[1] then return false end
if tonumber(m[2]) <= tonumber(ARGV[2]) or tonumber(m[3] or '0') >= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return false
end
redis.call('HINCRBY', KEYS[1], 'w', 1)
return m[1]
