-- Remove and return the newest user+assistant exchange of a conversation history.
--
-- KEYS[1]  the history list (one JSON message per element, oldest first)
-- Returns {user_json, assistant_json}, or false (nil in Python) when fewer than two
-- messages are stored; the list is left unchanged then.

local last = redis.call('LRANGE', KEYS[1], -2, -1)
if #last < 2 then
    return false
end
redis.call('LTRIM', KEYS[1], 0, -3)
return last
