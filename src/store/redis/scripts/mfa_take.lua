-- Consumes an MFA token. KEYS: mfa. ARGV: now. 1 for the one caller that takes a live one.
local t = redis.call('HGET', KEYS[1], 't')
if not t then return 0 end
redis.call('DEL', KEYS[1])
if tonumber(t) > tonumber(ARGV[1]) then return 1 end
return 0
