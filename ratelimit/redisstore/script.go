package redisstore

import "github.com/redis/go-redis/v9"

// admitScript checks and counts one request in every counter of KEYS, all
// or none, atomically (a Lua script runs alone on the server). Each key is
// a hash {w: window index, c: count in window w, p: count in window w-1}
// that rolls on when a new window starts, as the local counters do. The
// time is the server's (TIME), so instances whose clocks disagree still
// share window edges.
//
// ARGV[1] is the window length in milliseconds, ARGV[2] "1" for a sliding
// window, ARGV[3] how many permits to take (1, or cluster_batch's N: it
// takes as many as every counter still has, at most N, at least 1),
// ARGV[3+i] the limit of KEYS[i] (<= 0 admits nothing).
//
// It returns {admitted (1/0), index of the blocking counter (0-based) or of
// the most constrained one when admitted, its limit, its remaining, ms until
// the current window ends, permits taken}.
const admitSource = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local sliding = ARGV[2] == '1'
local take = tonumber(ARGV[3])
local w = math.floor(now / window)
local elapsed = now - w * window
local reset = window - elapsed
local cur, prev = {}, {}
local best, bestLimit, bestRem = 0, 0, -1
for i = 1, #KEYS do
  local lim = tonumber(ARGV[3 + i])
  local v = redis.call('HMGET', KEYS[i], 'w', 'c', 'p')
  local sw, c, p = tonumber(v[1]), tonumber(v[2]) or 0, tonumber(v[3]) or 0
  if sw ~= w then
    if sw == w - 1 then p = c else p = 0 end
    c = 0
  end
  local used = c
  if sliding and p > 0 then
    used = used + math.ceil(p * (window - elapsed) / window)
  end
  if used >= lim then
    if lim < 0 then lim = 0 end
    return {0, i - 1, lim, 0, reset, 0}
  end
  cur[i], prev[i] = c, p
  if lim - used < take then take = lim - used end
  local rem = lim - used
  if bestRem < 0 or rem < bestRem then
    best, bestLimit, bestRem = i - 1, lim, rem
  end
end
bestRem = bestRem - take
for i = 1, #KEYS do
  redis.call('HSET', KEYS[i], 'w', w, 'c', cur[i] + take, 'p', prev[i])
  redis.call('PEXPIRE', KEYS[i], 2 * window)
end
return {1, best, bestLimit, bestRem, reset, take}
`

// admitScript is loaded once per server and run by EVALSHA; Run falls back
// to EVAL (which loads it again) when the server answers NOSCRIPT (after a
// restart or SCRIPT FLUSH).
var admitScript = redis.NewScript(admitSource)
