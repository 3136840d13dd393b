-- Reset a lock key's TTL only if it still holds the caller's token.
-- KEYS[1] the lock key, ARGV[1] the holder's random token, ARGV[2] the new TTL in ms.
-- Returns 1 if extended, 0 if the lock expired or belongs to someone else.
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
