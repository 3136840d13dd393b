-- Delete a lock key only if it still holds the caller's token.
-- KEYS[1] the lock key, ARGV[1] the holder's random token. Returns 1 if deleted, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
