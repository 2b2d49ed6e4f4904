-- ringfence-fleet: GCRA over one key, atomically (as redis-cell's CL.THROTTLE
-- does, in a script any Redis or Valkey runs).
--
-- KEYS[1]  the key: its theoretical arrival time (TAT), in microseconds
--          since the Unix epoch, as a decimal string.
-- ARGV[1]  interval: microseconds to replenish one unit (>= 1)
-- ARGV[2]  burst: units that fit at once (>= 0)
-- ARGV[3]  want: units asked for (>= 0); the answer grants from 0 to want
-- ARGV[4]  now, microseconds since the Unix epoch (the caller's clock: the
--          fleet shares one time base, and replays run in trace time)
-- ARGV[5]  debit: units a node already admitted on its own, taken first
--          and whole, even past the burst
--
-- Returns {granted, ahead, retry, repaired}: the units granted of `want`
-- (the debit is not among them); how far the
-- TAT is ahead of now afterwards (µs); µs until one more unit would fit;
-- 1 if the stored value was not a time and was replaced, else 0.
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local debit = tonumber(ARGV[5])
if not (interval and burst and want and now and debit) or interval < 1
    or burst < 0 or want < 0 or now < 0 or debit < 0 then
  return redis.error_reply('ringfence: bad arguments to the GCRA script')
end
local tat = now
local repaired = 0
local stored = redis.call('GET', KEYS[1])
if stored then
  local t = tonumber(stored)
  -- Not a time, or further ahead than any debit could have pushed it (a
  -- value from another schema or a corrupt write): start afresh.
  if t == nil or t ~= t or t > now + 4 * interval * burst + 3600000000 then
    repaired = 1
  elseif t > tat then
    tat = t
  end
end
local capacity = interval * burst
tat = tat + debit * interval
local granted = want
local room = math.floor((now + capacity - tat) / interval)
if room < 0 then room = 0 end
if room < granted then granted = room end
tat = tat + granted * interval
if granted > 0 or debit > 0 or repaired == 1 then
  local ttl = math.ceil((tat - now) / 1000)
  if ttl < 1 then ttl = 1 end
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', ttl)
end
local retry = tat + interval - capacity - now
if retry < 0 then retry = 0 end
return {granted, tat - now, retry, repaired}
