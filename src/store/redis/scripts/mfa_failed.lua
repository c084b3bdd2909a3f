-- The attempt's code was wrong: at `max` the token dies. KEYS: mfa. ARGV: max.
local w = tonumber(redis.call('HGET', KEYS[1], 'w') or '0')
if w >= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) end
return w
