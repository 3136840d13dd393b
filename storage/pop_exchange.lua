-- Remove the newest user+assistant exchange of a conversation history, if it is the
-- one the caller read.
--
-- KEYS[1]  the history list (one JSON message per element, oldest first)
-- ARGV[1]  the user message JSON, ARGV[2] the assistant message JSON, as read
-- Returns 1 when the last two elements were exactly ARGV[1], ARGV[2] and are removed;
-- 0 (the list unchanged) otherwise, e.g. for a retry whose first run removed them.

local last = redis.call('LRANGE', KEYS[1], -2, -1)
if #last == 2 and last[1] == ARGV[1] and last[2] == ARGV[2] then
    redis.call('LTRIM', KEYS[1], 0, -3)
    return 1
end
return 0
