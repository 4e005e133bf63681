//! The Lua scripts of the Redis stores and coordinator. Each runs atomically on the server,
//! which makes a session write a compare-and-set, and lock acquisition, publication and
//! release compare-and-set operations on the fencing value.
//!
//! # Sessions and their indexes
//!
//! A session is a hash (`v`: the encrypted session; `sid` and `sub`: the *labels* of the
//! indexes it belongs to, `{prefix}i:sid:{hash}` and `{prefix}i:sub:{hash}`; `z`: which
//! entries were added for it). Each label names
//! an index, a sorted set at `{label}:z` whose members are session ids scored by the latest
//! instant (Unix milliseconds) their session can live: its absolute expiry. Saving a session
//! is O(1) in how many sessions its user has: a session already indexed only has its value
//! written; a new (or re-labelled) one adds its entries (`ZADD`, O(log k)) and drops the
//! entries whose score has passed (`ZREMRANGEBYSCORE`, amortised O(1): each entry is
//! dropped once). Nothing scans an index but a back-channel logout.
//!
//! Index entries may be stale (a session deleted or re-labelled): whoever ends a session
//! through an index first checks that the session still carries that label.
//!
//! On one server (standalone, replicas, Sentinel) [`SAVE_SESSION`] adds the index entries in
//! the same atomic script (`mode` `here`), [`DELETE_SESSION`] removes them, and
//! [`LOGOUT`] ends every session of an index in one script. On a Redis Cluster a script may
//! only touch keys of one hash slot, and a session and its user's indexes live in different
//! slots: the store then adds the index entries first ([`INDEX_ADD`], one call per index),
//! writes the session second ([`SAVE_SESSION`] in mode `done`, or `ask`, which answers 4
//! when entries are missing), and a back-channel logout lists an index, then ends each
//! listed session that still carries the label ([`END_SESSION`]) one by one. See the module
//! documentation of `store::redis` for what that guarantees under races.

use redis::Script;
use std::sync::LazyLock;

/// Lua: adds session `id` to the index `z` with the score `score` (ms), dropping the entries
/// past `now` (ms), and keeps the index alive as long as its longest-lived entry.
const INDEX_FN: &str = r#"
local function index(z, id, score, now)
  redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
  redis.call('ZADD', z, score, id)
  local ttl = tonumber(score) - tonumber(now)
  if ttl > 0 and redis.call('PTTL', z) < ttl then redis.call('PEXPIRE', z, ttl) end
end
"#;

/// Lua: removes session `id` from the index labelled `label` (the sorted set, and the set of
/// the same name that versions before the sorted sets wrote, while it lives).
const UNINDEX_FN: &str = r#"
local function unindex(label, id)
  if not label or label == '' then return end
  redis.call('ZREM', label .. ':z', id)
  if redis.call('TYPE', label).ok == 'set' then redis.call('SREM', label, id) end
end
"#;

fn with_functions(body: &str) -> String {
    format!("{INDEX_FN}{UNINDEX_FN}{body}")
}

/// Writes a session.
///
/// The hash's `z` field records which index entries were added for it (their score and the
/// two labels): a save whose session already has them writes the value only (`HMGET`,
/// `HSET`, `PEXPIRE`); otherwise the entries are added (mode `here`), or were (`done`), or
/// the script answers 4 (`ask`). A session written by an earlier version has no `z`, so its
/// first save here indexes it.
///
/// `KEYS[1]` the session hash. `ARGV[1]` the encrypted session, `ARGV[2]` its TTL in
/// milliseconds, `ARGV[3]` the session id, `ARGV[4]` `"1"` to update an existing session only,
/// `ARGV[5]` the encrypted session the write was computed from, or `""` (a compare-and-set: an
/// update-only save of a session another request changed meanwhile is recomputed, not
/// written over it), `ARGV[6]` / `ARGV[7]` the session's `sid` / `sub` index labels or `""`,
/// `ARGV[8]` the index mode: `here` (one server: add missing index entries in this script),
/// `done` (the caller added them), `ask` (answer 4 when they are not recorded as added:
/// a new session, new labels), `ARGV[9]` the entries' score (the absolute expiry, Unix ms), `ARGV[10]` now (ms).
///
/// Returns 1 when written, 0 when `ARGV[4]` is `"1"` and there is no session under the id, or
/// the stored session belongs to another user (it is deleted: a new login never reuses a
/// session id that another identity held), 2 when `ARGV[5]` is not what is stored, 4 (mode
/// `ask`) when index entries must be added first. O(1) in the size of the indexes (amortised,
/// see the module documentation).
pub(crate) static SAVE_SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&with_functions(
        r#"
local key, id, mode = KEYS[1], ARGV[3], ARGV[8]
local old = redis.call('HMGET', key, 'sid', 'sub', 'z')
local exists = old[2] ~= false
if ARGV[4] == '1' then
  if not exists then return 0 end
  if old[2] ~= ARGV[7] then
    if mode == 'here' then unindex(old[1], id) unindex(old[2], id) end
    redis.call('DEL', key)
    return 0
  end
  if ARGV[5] ~= '' and redis.call('HGET', key, 'v') ~= ARGV[5] then return 2 end
end
local marker = ARGV[9] .. '|' .. ARGV[6] .. '|' .. ARGV[7]
if old[3] == marker then
  redis.call('HSET', key, 'v', ARGV[1])
else
  if mode == 'ask' then return 4 end
  if mode == 'here' then
    for i = 1, 2 do
      local label = ARGV[5 + i]
      if exists and old[i] and old[i] ~= '' and old[i] ~= label then unindex(old[i], id) end
      if label ~= '' then index(label .. ':z', id, ARGV[9], ARGV[10]) end
    end
  end
  redis.call('HSET', key, 'v', ARGV[1], 'sid', ARGV[6], 'sub', ARGV[7], 'z', marker)
end
redis.call('PEXPIRE', key, ARGV[2])
return 1
"#,
    ))
});

/// Adds a session to one index (a Redis Cluster save's first step). `KEYS[1]` the index
/// (`{label}:z`), `ARGV[1]` the session id, `ARGV[2]` its score (absolute expiry, Unix ms),
/// `ARGV[3]` now (ms). Returns 1.
pub(crate) static INDEX_ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&with_functions(
        r#"
index(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
return 1
"#,
    ))
});

/// Deletes a session. `KEYS[1]` the session hash, `ARGV[1]` the session id, `ARGV[2]` `"1"` to
/// remove its index entries too (one server). Returns `{deleted (0 or 1), sid label, sub
/// label}` (labels `""` when none): on a cluster the caller removes the entries.
pub(crate) static DELETE_SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&with_functions(
        r#"
local old = redis.call('HMGET', KEYS[1], 'sid', 'sub')
if ARGV[2] == '1' then unindex(old[1], ARGV[1]) unindex(old[2], ARGV[1]) end
return {redis.call('DEL', KEYS[1]), old[1] or '', old[2] or ''}
"#,
    ))
});

/// Ends one session found through an index, if it still carries the index's label (a Redis
/// Cluster back-channel logout's second step). `KEYS[1]` the session hash, `ARGV[1]` the
/// field (`sid` or `sub`), `ARGV[2]` the label. Returns `{1, sid label, sub label}` when it
/// was deleted, `{0, "", ""}` otherwise.
pub(crate) static END_SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local old = redis.call('HMGET', KEYS[1], 'sid', 'sub')
local i = ARGV[1] == 'sid' and 1 or 2
if old[i] ~= ARGV[2] then return {0, '', ''} end
redis.call('DEL', KEYS[1])
return {1, old[1] or '', old[2] or ''}
"#,
    )
});

/// Ends every session of the indexes labelled `ARGV[3..]` (one server), in one atomic script:
/// each listed session that still carries the label is deleted and removed from its other
/// index; the indexes are deleted. Also reads the index sets versions before the sorted sets
/// wrote (a set at the label itself). `ARGV[1]` the session key prefix, `ARGV[2]` the field
/// (`sid` or `sub`). Returns how many sessions were deleted. O(sessions in the indexes).
pub(crate) static LOGOUT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&with_functions(
        r#"
local n = 0
local field = ARGV[2] == 'sid' and 1 or 2
local function finish(id, label)
  local key = ARGV[1] .. id
  local old = redis.call('HMGET', key, 'sid', 'sub')
  if old[field] ~= label then return end
  for i = 1, 2 do
    if old[i] and old[i] ~= label then unindex(old[i], id) end
  end
  n = n + redis.call('DEL', key)
end
for a = 3, #ARGV do
  local label = ARGV[a]
  for _, id in ipairs(redis.call('ZRANGE', label .. ':z', 0, -1)) do finish(id, label) end
  redis.call('DEL', label .. ':z')
  if redis.call('TYPE', label).ok == 'set' then
    for _, id in ipairs(redis.call('SMEMBERS', label)) do finish(id, label) end
    redis.call('DEL', label)
  end
end
return n
"#,
    ))
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
