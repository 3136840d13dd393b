-- Append one user+assistant exchange to a conversation history, trim it, refresh TTLs.
--
-- KEYS[1]      the history list (one JSON message per element, oldest first)
-- KEYS[2..n]   other keys of the same conversation whose TTL is refreshed
-- ARGV[1]      user message JSON       ARGV[2]  assistant message JSON
-- ARGV[3]      max_turns (exchanges)   ARGV[4]  max_tokens (estimated)
-- ARGV[5]      ttl in seconds          ARGV[6]  the turn id ("" for none)
-- Each message JSON carries "tokens" (an estimate written by storage/tokens.py); the
-- user message JSON carries "turn" = ARGV[6]. When a stored message already carries
-- that turn id, the exchange is stored already (the call is a retry whose first run
-- succeeded): nothing changes and 0 is returned. Otherwise trims whole exchanges (two
-- elements) from the oldest side until at most max_turns remain and their token sum
-- is <= max_tokens; the newest exchange is always kept. Returns the number of
-- messages left in the history (>= 2).

local history = KEYS[1]
local max_turns = tonumber(ARGV[3])
local max_tokens = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local turn = ARGV[6]

local items = redis.call('LRANGE', history, 0, -1)
items[#items + 1] = ARGV[1]
items[#items + 1] = ARGV[2]
local count = #items

local tokens = {}
local total = 0
for i = 1, count do
    local ok, message = pcall(cjson.decode, items[i])
    local t = 0
    if ok and type(message) == 'table' then
        if i <= count - 2 and turn ~= '' and message['turn'] == turn then
            return 0
        end
        t = tonumber(message['tokens']) or 0
    end
    tokens[i] = t
    total = total + t
end

redis.call('RPUSH', history, ARGV[1], ARGV[2])

local drop = 0
local function drop_exchange()
    total = total - tokens[drop + 1] - tokens[drop + 2]
    drop = drop + 2
end
while count - drop > 2 * max_turns do
    drop_exchange()
end
while total > max_tokens and count - drop > 2 do
    drop_exchange()
end
if drop > 0 then
    redis.call('LTRIM', history, drop, -1)
end

for i = 1, #KEYS do
    redis.call('EXPIRE', KEYS[i], ttl)
end
return count - drop
