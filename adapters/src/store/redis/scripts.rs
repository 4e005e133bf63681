//! The Lua scripts of the Redis stores and coordinator. Each runs atomically on the server,
//! which keeps a session and its index-set memberships consistent, and makes lock
//! acquisition, publication and release compare-and-set operations on the fencing value.
//!
//! Scripts touch keys derived from their arguments (session keys named in index sets), so
//! they need a single Redis (standalone, or a primary with replicas / Sentinel), not Redis
//! Cluster.

use redis::Script;
use std::sync::LazyLock;

/// Writes a session and keeps its index sets consistent.
///
/// `KEYS[1]` the session hash, `KEYS[2]` its `sid` index set or `""`, `KEYS[3]` its `sub`
/// index set or `""`. `ARGV[1]` the encrypted session, `ARGV[2]` its TTL in milliseconds,
/// `ARGV[3]` the session id, `ARGV[4]` `"1"` to update an existing session only, `ARGV[5]`
/// the session key prefix (to prune index members whose session expired), `ARGV[6]` the
/// encrypted session the write was computed from, or `""` (a compare-and-set: an update-only
/// save of a session another request changed meanwhile is recomputed, not written over it).
///
/// Returns 1 when written, 0 when `ARGV[4]` is `"1"` and there is no session under the id, or
/// the stored session belongs to another user (it is deleted: a new login never reuses a
/// session id that another identity held), 2 when `ARGV[6]` is not what is stored. A write
/// that leaves the session's index sets as they were does not touch their other members.
pub(crate) static SET_SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local old = redis.call('HMGET', KEYS[1], 'sid', 'sub')
local exists = redis.call('EXISTS', KEYS[1]) == 1
local function unindex()
  for i = 1, 2 do
    if old[i] and old[i] ~= '' then redis.call('SREM', old[i], ARGV[3]) end
  end
end
if ARGV[4] == '1' then
  if not exists then return 0 end
  if (old[2] or '') ~= KEYS[3] then
    unindex()
    redis.call('DEL', KEYS[1])
    return 0
  end
  if ARGV[6] ~= '' and redis.call('HGET', KEYS[1], 'v') ~= ARGV[6] then return 2 end
end
local ttl = tonumber(ARGV[2])
if exists and (old[1] or '') == KEYS[2] and (old[2] or '') == KEYS[3] then
  redis.call('HSET', KEYS[1], 'v', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  for i = 2, 3 do
    if KEYS[i] ~= '' and redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
  end
  return 1
end
for i = 1, 2 do
  if old[i] and old[i] ~= '' and old[i] ~= KEYS[i + 1] then
    redis.call('SREM', old[i], ARGV[3])
  end
end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'sid', KEYS[2], 'sub', KEYS[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
for i = 2, 3 do
  if KEYS[i] ~= '' then
    for _, m in ipairs(redis.call('SMEMBERS', KEYS[i])) do
      if m ~= ARGV[3] and redis.call('EXISTS', ARGV[5] .. m) == 0 then
        redis.call('SREM', KEYS[i], m)
      end
    end
    redis.call('SADD', KEYS[i], ARGV[3])
    if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
  end
end
return 1
"#,
    )
});

/// Deletes a session and its index-set memberships. `KEYS[1]` the session hash, `ARGV[1]`
/// the session id. Returns the number of sessions deleted (0 or 1).
pub(crate) static DELETE_SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local old = redis.call('HMGET', KEYS[1], 'sid', 'sub')
for i = 1, 2 do
  if old[i] and old[i] ~= '' then redis.call('SREM', old[i], ARGV[1]) end
end
return redis.call('DEL', KEYS[1])
"#,
    )
});

/// Deletes every session listed in the index sets `KEYS` (and the sets), removing each from
/// its other index set too. `ARGV[1]` the session key prefix. Returns how many sessions were
/// deleted.
pub(crate) static DELETE_BY_INDEX: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local n = 0
for _, idx in ipairs(KEYS) do
  for _, id in ipairs(redis.call('SMEMBERS', idx)) do
    local key = ARGV[1] .. id
    local old = redis.call('HMGET', key, 'sid', 'sub')
    for i = 1, 2 do
      if old[i] and old[i] ~= '' and old[i] ~= idx then redis.call('SREM', old[i], id) end
    end
    n = n + redis.call('DEL', key)
  end
  redis.call('DEL', idx)
end
return n
"#,
    )
});

/// Looks for a published refresh result, then for a published rotation of the lane, else
/// tries to take the lock.
///
/// `KEYS[1]` the result (per coalesce key), `KEYS[2]` the lock (per lane, or per key for a
/// request without a lane), `KEYS[3]` (optional: requests with a lane) the lane's published
/// rotation; `ARGV[1]` this caller's fencing value, `ARGV[2]` the lock TTL in milliseconds.
/// Returns `{1, result}` when a result is published, `{3, rotation}` when the lane's refresh
/// token was rotated, `{2, ""}` when the caller holds the lock (also when it already held it:
/// a retried call whose first reply was lost), `{0, pttl}` while someone else holds it.
pub(crate) static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local r = redis.call('GET', KEYS[1])
if r then return {1, r} end
if KEYS[3] then
  local rotated = redis.call('GET', KEYS[3])
  if rotated then return {3, rotated} end
end
local cur = redis.call('GET', KEYS[2])
if cur == ARGV[1] then return {2, ''} end
if not cur and redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {2, ''}
end
return {0, tostring(redis.call('PTTL', KEYS[2]))}
"#,
    )
});

/// Publishes a refresh result and the lane's rotation, and releases the lock, atomically, if
/// the caller still holds the lock; otherwise (its lock expired) publishes each only where
/// none is published and leaves the lock alone.
///
/// `KEYS[1]` the result, `KEYS[2]` the lock, `KEYS[3]` (optional) the lane's rotation;
/// `ARGV[1]` the fencing value, `ARGV[2]` the encrypted result (`""`: none), `ARGV[3]` its TTL
/// in milliseconds, `ARGV[4]` the encrypted rotation (`""`: none), `ARGV[5]` its TTL in
/// milliseconds. Returns 1 if the lock was held.
pub(crate) static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local held = redis.call('GET', KEYS[2]) == ARGV[1]
local function put(key, value, ttl)
  if value == '' then return end
  if held then
    redis.call('SET', key, value, 'PX', ttl)
  else
    redis.call('SET', key, value, 'NX', 'PX', ttl)
  end
end
put(KEYS[1], ARGV[2], ARGV[3])
if KEYS[3] then put(KEYS[3], ARGV[4], ARGV[5]) end
if held then
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"#,
    )
});
