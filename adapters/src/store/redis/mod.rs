//! Redis stores and cross-instance refresh coordination (features `redis` and
//! `redis-tokio`), for applications running several instances.
//!
//! * [`RedisStateStore`] — sessions in Redis, keyed by a random 256-bit session id that the
//!   browser holds in a cookie (`__a0_sid` by default, as [`memory`](super::memory)); the
//!   `store_options` are [`CookieOptions`]. Sessions survive deploys and are shared by every
//!   instance.
//! * [`RedisTransactionStore`] — login transactions in Redis, bound to the browser that
//!   started the login by a random value in a short-lived cookie.
//! * [`RedisRefreshCoordinator`] — a [`RefreshCoordinator`](crate::coordinator) for the
//!   blocking client: at most one instance at a time spends a refresh token (a lock per
//!   refresh-token lane, whatever the audience); the others use its answer for the same
//!   request, or the refresh token it was rotated to for another audience or scope.
//! * With feature `redis-tokio`: [`AsyncRedisStateStore`], [`AsyncRedisTransactionStore`]
//!   and [`AsyncRedisRefreshCoordinator`] for the async client. They use the `redis` crate's
//!   tokio integration and **must be used inside a tokio runtime**; the blocking types need
//!   no runtime, and the SDK's default build depends on neither Redis nor a runtime.
//!
//! # Storage
//!
//! * **Encrypted at rest.** Session and transaction JSON, refresh answers and rotated refresh
//!   tokens are stored as compact JWE (`dir`, `A256CBC-HS512`, the
//!   [cookie codec](super::cookie::codec)) under keys derived from the configured secrets
//!   ([`Config::secrets`]: the first encrypts, all decrypt) with fixed HKDF salts
//!   ([`SESSION_SALT`], [`TRANSACTION_SALT`], [`REFRESH_SALT`]). Redis never holds a token
//!   in clear.
//! * **Keys** (prefix default [`DEFAULT_KEY_PREFIX`]): `{prefix}s:{session id}` (a hash:
//!   the encrypted session and the labels of its indexes), `{prefix}i:sid:{hash}:z` and
//!   `{prefix}i:sub:{hash}:z` (indexes: sorted sets of session ids, by SHA-256 of issuer and
//!   `sid`, or issuer and `sub` — no user id in clear — scored by each session's absolute
//!   expiry), `{prefix}t:{hash}` (transactions), and for refresh coordination
//!   `{prefix}r:{hash}:result` (a refresh answer, per coalesce key), `{prefix}l:{hash}:lock`
//!   and `{prefix}l:{hash}:rotated` (a refresh-token lane's lock and the token it was rotated
//!   to; both keys name the token by a hash of its hash). On a Redis Cluster the
//!   coordinator's keys carry hash tags (see [Redis Cluster](#redis-cluster)).
//! * **Expiry** as the cookie store: a session ends after its absolute duration (default 7
//!   days from creation) or its inactivity duration (default 3 days from the last use),
//!   whichever comes first; the Redis TTL is set to that instant on every write, and a
//!   session read more than [`TOUCH_INTERVAL`] seconds after its last write is rewritten
//!   (rolling expiry). An index entry is dropped by the next save into its index once its
//!   session's absolute expiry has passed; an index lives as long as its longest-lived entry.
//! * **Cost.** A read is one `HGET`; when the value is one this store decoded before it is
//!   not decrypted again ([`RedisStateStoreBuilder::cache_capacity`]). A save is one script,
//!   O(1) in how many sessions the user has (it checks or adds its own index entries and
//!   drops passed ones; nothing scans an index). A back-channel logout is O(sessions it
//!   ends).
//! * **Consistency.** On one server (standalone, or a primary with replicas / Sentinel) every
//!   write, delete and back-channel logout is one Lua script, so a session and its index
//!   entries change together. On a Redis Cluster see [below](#redis-cluster).
//! * **No session fixation.** A cookie naming an unknown session id is never adopted, and a
//!   login over a session id held by another user gets a new id.
//! * **Failure.** An unreachable Redis is an error with code `store_error` (never a panic);
//!   the session cookie is only set after its session was written.
//!
//! # URLs
//!
//! * `redis://host:6379/0` — no authentication; the number is the database (default 0).
//! * `redis://:password@host:6379/` — the `default` user's password (`requirepass`).
//! * `redis://user:password@host:6379/` — an ACL user (Redis 6+, and what managed services
//!   such as ElastiCache, Azure Cache, Upstash or Redis Cloud hand out). Percent-encode
//!   reserved characters in the password (`@` is `%40`).
//! * `rediss://user:password@host:6380/` — the same over TLS (feature `redis-tls`, and
//!   `redis-tokio-tls` for the async types), with rustls; the server's certificate is checked
//!   against the operating system's trust store, or the bundle `SSL_CERT_FILE` names.
//!   Without the feature a `rediss://` URL is refused with a message saying so.
//! * `redis+unix:///run/redis.sock` — a Unix socket.
//!
//! * `redis+cluster://host1:7000,host2:7000/` — a Redis Cluster or Valkey cluster (feature
//!   `redis-cluster`, and `redis-tokio-cluster` for the async types), through any of its
//!   nodes (the others are discovered); `redis+cluster://user:password@…` for an ACL user
//!   on every node, `rediss+cluster://…` over TLS (with the TLS features).
//!
//! Error messages show the scheme, host and port only, never the user or password.
//!
//! # Redis Cluster
//!
//! A script may only touch keys of one hash slot, and a session (its slot chosen by its
//! random id) and its user's indexes (chosen by the user's hash) are in different slots. So
//! on a cluster every script touches one key, and the store orders its steps:
//!
//! * **Save.** A new session's index entries are added first (one script per index, with
//!   the session's id and absolute expiry), then the session is written. An existing
//!   session is written directly; the write answers "index missing" when its `sid` or user
//!   changed (or its entries were never added), and the entries are added before writing
//!   again.
//! * **Delete.** The session is deleted, then its entries are removed.
//! * **Back-channel logout.** Each index the token names is listed, then each listed session
//!   is deleted *if it still carries that index's label* (a stale entry never ends a session
//!   that moved to another `sid`), and its entries are removed. A token naming both `sid`
//!   and `sub` ends only the listed sessions of that user: each is read and checked by the
//!   core's rule (`logout::logout_token_selects`) before it is ended.
//! * **Logout-token replay.** A logout token's `jti` is recorded with one `SET … NX EXAT`
//!   (`{prefix}j:{hash}`) until the token expires: a token replayed to any instance is
//!   refused.
//! * **Guarantees.** A session whose save returned before the logout started is ended by it.
//!   Because entries are written before their session and an index is never deleted
//!   wholesale, a session is never alive without its index entries: a login that races a
//!   logout either is ended by it or stays indexed, so a later logout for the same user or
//!   `sid` ends it (as on one server, where a save that runs after the logout's script
//!   survives it). A crash between the steps leaves at most an index entry without a
//!   session, which is harmless and dropped at its expiry. A session id that was deleted is
//!   never written again (update-only writes need the session to exist), so the entries of
//!   ended sessions can be removed safely.
//! * **Coordinator.** The keys one coordinator script touches share a hash tag, the lane's
//!   hash in literal braces; with the default prefix, `auth0:l:{g}:lock`,
//!   `auth0:l:{g}:rotated` and `auth0:r:{g}:h:result` for a refresh on lane `g` with coalesce
//!   key `h` (`auth0:r:{h}:lock` and `auth0:r:{h}:result` without a lane), so the lock, the
//!   published answer and the rotation of a lane are on one node.
//!   On one server the keys keep their earlier names (no braces), so instances of this and
//!   earlier versions coordinate during a rolling upgrade.
//! * **Revocations.** [`RedisRevocations`] reads its entries with one `MGET`, which the
//!   cluster client splits by slot.
//! * A key prefix containing `{…}` puts every key in that one slot: correct, but not spread.
//!
//! # Upgrading from earlier versions
//!
//! Session keys, their fields and the coordinator's keys on one server are unchanged, so
//! sessions survive the upgrade. Earlier versions indexed sessions in plain sets at the
//! label itself (`{prefix}i:sub:{hash}`); a back-channel logout also ends the sessions
//! listed there, and the next save of such a session adds its sorted-set entries. During a
//! rolling upgrade an instance of an earlier version does not see the new indexes: a
//! back-channel logout it receives misses sessions saved by upgraded instances.
//!
//! # Example
//!
//! ```no_run
//! use auth0_server::blocking::ServerClient;
//! use auth0_server::store::redis::{RedisRefreshCoordinator, RedisStateStore, RedisTransactionStore};
//! use auth0_server::Config;
//!
//! let config = Config::builder("tenant.auth0.com", "client-id")
//!     .client_secret("client-secret")
//!     .secret("a-secret-of-at-least-32-bytes-long!!")
//!     .build()?;
//! let url = "redis://127.0.0.1:6379/";
//! let client = ServerClient::builder(
//!     config.clone(),
//!     RedisStateStore::builder(&config, url).build()?,
//!     RedisTransactionStore::builder(&config, url).build()?,
//! )
//! .coordinator(RedisRefreshCoordinator::builder(&config, url).build()?)
//! .build();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`CookieOptions`]: super::CookieOptions
//! [`Config::secrets`]: auth0_server_protocol::config::Config::secrets

mod cache;
mod coordinator;
/// Fuzzing entry points (not API): see `fuzz/fuzz_targets/redis_*.rs`.
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "redis-tokio")]
mod nonblocking;
mod pool;
mod revocations;
mod scripts;

#[cfg(feature = "redis-tokio")]
pub use self::coordinator::AsyncRedisRefreshCoordinator;
pub use self::coordinator::{
    DEFAULT_FAILURE_TTL, DEFAULT_LOCK_TTL, RedisRefreshCoordinator, RedisRefreshCoordinatorBuilder,
};
#[cfg(feature = "redis-tokio")]
pub use self::nonblocking::{AsyncRedisStateStore, AsyncRedisTransactionStore};
pub use self::pool::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_IO_TIMEOUT};
pub use self::revocations::{RedisRevocations, RedisRevocationsBuilder};
pub use super::cookie::{
    DEFAULT_ABSOLUTE_DURATION, DEFAULT_CACHE_CAPACITY, DEFAULT_INACTIVITY_DURATION,
    DEFAULT_TRANSACTION_MAX_AGE, TOUCH_INTERVAL,
};
pub use super::memory::DEFAULT_SESSION_ID_COOKIE;

use self::cache::DecodedSessions;
use self::pool::{Endpoint, Pool, Topology};
use super::cookie::chunks;
use super::cookie::codec::CookieCodec;
use super::cookie::is_loopback_http;
use crate::store::kit;
pub(crate) use crate::store::kit::random_token;
use crate::store::{CookieOptions, LogoutTokenIdRecord, StateStore, StoreError, TransactionStore};
use auth0_server_protocol::config::Config;
use auth0_server_protocol::effect::{JtiRecord, LogoutTokenClaims};
use auth0_server_protocol::logout::logout_token_selects;
use auth0_server_protocol::secret::Secret;
use auth0_server_protocol::session::{Merged, SessionLifetime, SessionUpdate, StateData, Updated};
use auth0_server_protocol::time::UnixTime;
use auth0_server_protocol::transaction::TransactionData;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// Default prefix of every key the Redis stores and coordinator write.
pub const DEFAULT_KEY_PREFIX: &str = "auth0:";
/// HKDF salt of session encryption.
pub const SESSION_SALT: &str = "auth0-server/redis/session";
/// HKDF salt of transaction encryption.
pub const TRANSACTION_SALT: &str = "auth0-server/redis/transaction";
/// HKDF salt of published refresh answers.
pub const REFRESH_SALT: &str = "auth0-server/redis/refresh";

/// How many times an update-only save is recomputed when other requests keep changing the
/// session between its read and its write.
pub(crate) const MAX_UPDATE_ATTEMPTS: usize = 16;

/// What an update-only save does, decided by [`Sessions::updated`].
pub(crate) enum UpdateStep {
    /// The session is gone (or another, or past its lifetime): write nothing.
    Gone,
    /// The session already holds everything the update brings: nothing to write.
    Unchanged,
    /// Write this, if the session still holds `read`.
    Write {
        /// The stored value the update was applied to.
        read: String,
        /// The updated session, encrypted.
        prepared: Box<Prepared>,
    },
}

/// What the update script answered.
pub(crate) fn update_written(answer: i64) -> Option<Updated> {
    match answer {
        1 => Some(Updated::Saved),
        0 => Some(Updated::Gone),
        _ => None,
    }
}

/// The error of an update-only save that lost the race [`MAX_UPDATE_ATTEMPTS`] times.
pub(crate) fn update_contended() -> StoreError {
    StoreError::new("the session kept changing while it was being saved")
}

/// Bytes of randomness in a session id (256 bits).
const SESSION_ID_BYTES: usize = 32;
/// Longest cookie value looked up as a session id.
const MAX_ID_LEN: usize = 64;
/// Bytes of randomness binding a transaction to its browser.
const BINDING_BYTES: usize = 16;

pub(crate) fn hex_sha256(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update([0u8]);
        }
        h.update(p.as_bytes());
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(64);
    for b in h.finalize() {
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    hex
}

/// The command recording the back-channel logout token named `key` (its issuer and `jti`)
/// unless it is recorded already: `SET {prefix}j:{SHA-256 of key} 1 NX EXAT until`, one
/// atomic set-if-absent with expiry that every instance sees (Back-Channel Logout 1.0 §2.6).
/// On a cluster the key lives in its own slot; nothing else is touched with it.
pub(crate) fn record_logout_token_id_cmd(
    prefix: &str,
    key: &str,
    until: UnixTime,
    now: UnixTime,
) -> redis::Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(format!("{prefix}j:{}", hex_sha256(&[key])))
        .arg(1)
        .arg("NX")
        .arg("EXAT")
        // Never a time already past: Redis would drop the record at once.
        .arg(until.as_secs().max(now.as_secs().saturating_add(1)));
    cmd
}

/// What [`record_logout_token_id_cmd`] answered: `OK` when the key was set (first seen),
/// nil when it already existed (a replay).
pub(crate) fn logout_token_id_recorded(reply: Option<String>) -> LogoutTokenIdRecord {
    LogoutTokenIdRecord::Kept(match reply {
        Some(_) => JtiRecord::FirstSeen,
        None => JtiRecord::Replayed,
    })
}

fn check_secrets(secrets: &[Secret]) -> Result<(), StoreError> {
    kit::check_secrets("Redis store", secrets)
}

fn codec(secrets: &[Secret], salt: &str) -> CookieCodec {
    CookieCodec::new(secrets.iter().map(|s| s.expose().as_bytes()), salt)
}

fn millis(secs: u64) -> u64 {
    secs.saturating_mul(1000).max(1)
}

// ---------------------------------------------------------------------------------------------
// Sessions: the logic shared by the blocking and the async store
// ---------------------------------------------------------------------------------------------

/// Settings and pure logic of a session store; the blocking and async stores only add I/O.
pub(crate) struct Sessions {
    prefix: String,
    topology: Topology,
    codec: CookieCodec,
    decoded: DecodedSessions,
    cookie_name: String,
    secure: bool,
    absolute: u64,
    inactivity: u64,
}

/// A session ready to be written.
pub(crate) struct Prepared {
    value: String,
    ttl_ms: u64,
    /// The label of its `sid` index (`{prefix}i:sid:{hash}`), or `""`.
    sid_label: String,
    /// The label of its `sub` index (`{prefix}i:sub:{hash}`), or `""`.
    sub_label: String,
    /// Its index entries' score: the latest instant it can live (Unix ms).
    score_ms: u64,
    /// When it was prepared (Unix ms): index entries scored before are dropped.
    now_ms: u64,
    /// The session `value` encrypts (remembered as decoded once it is written).
    state: Arc<StateData>,
    /// `Max-Age` of a new session-id cookie: until the absolute limit.
    cookie_max_age: u64,
}

/// What to do with a stored value read for a session id.
pub(crate) enum Loaded {
    /// No session (absent, expired, unreadable): clear the cookie, delete the leftover.
    Gone { leftover: bool },
    /// A valid session.
    Valid(Arc<StateData>),
    /// A valid session to rewrite with this `last_active_at` (rolling expiry).
    Touch(Prepared),
}

impl Sessions {
    pub(crate) fn id<'a>(&self, options: &'a CookieOptions) -> Option<&'a str> {
        options
            .cookie(&self.cookie_name)
            .filter(|id| !id.is_empty() && id.len() <= MAX_ID_LEN)
    }

    pub(crate) fn key(&self, id: &str) -> String {
        format!("{}s:{id}", self.prefix)
    }

    pub(crate) fn session_prefix(&self) -> String {
        format!("{}s:", self.prefix)
    }

    fn sid_index(&self, iss: &str, sid: &str) -> String {
        format!("{}i:sid:{}", self.prefix, hex_sha256(&[iss, sid]))
    }

    fn sub_index(&self, iss: &str, sub: &str) -> String {
        format!("{}i:sub:{}", self.prefix, hex_sha256(&[iss, sub]))
    }

    fn attributes(&self, max_age: u64) -> String {
        kit::cookie_attributes_max_age(self.secure, max_age)
    }

    pub(crate) fn set_cookie(&self, options: &mut CookieOptions, id: &str, max_age: u64) {
        options.set_cookie(&self.cookie_name, id, &self.attributes(max_age));
    }

    pub(crate) fn clear_cookie(&self, options: &mut CookieOptions) {
        if options.cookie(&self.cookie_name).is_some() {
            options.remove_cookie(&self.cookie_name, kit::cookie_attributes(self.secure));
        }
    }

    fn lifetime(&self) -> SessionLifetime {
        SessionLifetime {
            absolute: Duration::from_secs(self.absolute),
            inactivity: Duration::from_secs(self.inactivity),
        }
    }

    fn expires_at(&self, state: &StateData) -> u64 {
        self.lifetime().expires_at(state).as_secs()
    }

    /// Stamps `created_at` (when 0) and `last_active_at = now`, encrypts. `None` when the
    /// session is already past its absolute limit (nothing to keep).
    pub(crate) fn prepare(
        &self,
        state: &StateData,
        now: u64,
    ) -> Result<Option<Prepared>, StoreError> {
        self.encode(state.written_at(UnixTime::from_secs(now)), now)
    }

    fn encode(&self, state: StateData, now: u64) -> Result<Option<Prepared>, StoreError> {
        let expires_at = self.expires_at(&state);
        if expires_at <= now {
            return Ok(None);
        }
        let iss = state.iss().unwrap_or("");
        let sid = state.internal.sid.as_str();
        let sid_label = if sid.is_empty() {
            String::new()
        } else {
            self.sid_index(iss, sid)
        };
        let sub_label = match (state.iss(), state.sub()) {
            (Some(iss), Some(sub)) => self.sub_index(iss, sub),
            _ => String::new(),
        };
        let latest = state.internal.created_at.saturating_add(self.absolute);
        Ok(Some(Prepared {
            value: self.codec.encrypt(&state.to_json())?,
            ttl_ms: millis(expires_at - now),
            sid_label,
            sub_label,
            score_ms: latest.saturating_mul(1000),
            now_ms: now.saturating_mul(1000),
            cookie_max_age: state
                .internal
                .created_at
                .saturating_add(self.absolute)
                .saturating_sub(now),
            state: Arc::new(state),
        }))
    }

    /// Remembers the session `p` wrote under `id` as decoded: the next read of that value
    /// needs no decryption.
    pub(crate) fn remember(&self, id: &str, p: Prepared) {
        self.decoded.insert(id, p.value, p.state);
    }

    /// The session in the stored `value` of session `id`: from the decoded-session cache when
    /// this exact value was decoded before, else decrypted and parsed (and cached). `None`
    /// when it does not decrypt or parse.
    fn decode(&self, id: &str, value: String) -> Option<Arc<StateData>> {
        if let Some(state) = self.decoded.get(id, &value) {
            return Some(state);
        }
        let state = Arc::new(StateData::from_json(&self.codec.decrypt(&value)?).ok()?);
        self.decoded.insert(id, value, Arc::clone(&state));
        Some(state)
    }

    /// Interprets the stored value of session `id` read at `now`.
    pub(crate) fn load(
        &self,
        id: &str,
        value: Option<String>,
        now: u64,
    ) -> Result<Loaded, StoreError> {
        let Some(value) = value else {
            self.decoded.remove(id);
            return Ok(Loaded::Gone { leftover: false });
        };
        let state = self.decode(id, value).filter(|s| self.expires_at(s) > now);
        let Some(state) = state else {
            return Ok(Loaded::Gone { leftover: true });
        };
        if self.lifetime().needs_touch(
            &state,
            auth0_server_protocol::time::UnixTime::from_secs(now),
        ) {
            let mut touched = StateData::clone(&state);
            touched.internal.last_active_at = Some(now);
            if let Some(p) = self.encode(touched, now)? {
                return Ok(Loaded::Touch(p));
            }
        }
        Ok(Loaded::Valid(state))
    }

    /// What an update-only save writes, computed from the stored `value` read at `now`.
    pub(crate) fn updated(
        &self,
        id: &str,
        value: Option<String>,
        update: &SessionUpdate,
        now: u64,
    ) -> Result<UpdateStep, StoreError> {
        let Some(read) = value else {
            return Ok(UpdateStep::Gone);
        };
        let state = match self.load(id, Some(read.clone()), now)? {
            Loaded::Valid(state) => state,
            Loaded::Touch(p) => p.state,
            Loaded::Gone { .. } => return Ok(UpdateStep::Gone),
        };
        let Merged::Updated(updated) = update.apply(StateData::clone(&state)) else {
            return Ok(UpdateStep::Gone);
        };
        if updated == *state {
            // Another request already saved the same result (callers sharing one refresh).
            return Ok(UpdateStep::Unchanged);
        }
        match self.prepare(&updated, now)? {
            Some(p) => Ok(UpdateStep::Write {
                read,
                prepared: Box::new(p),
            }),
            None => Ok(UpdateStep::Gone),
        }
    }

    /// The script writing `p` under `id`: `update_only`, only over an existing session of the
    /// same user; `read` (`""`: none), only if the session still holds that value (the
    /// compare-and-set of an update-only save); `mode`, who adds its index entries.
    pub(crate) fn save_script(
        &self,
        id: &str,
        p: &Prepared,
        update_only: bool,
        read: &str,
        mode: IndexMode,
    ) -> redis::ScriptInvocation<'static> {
        let mut inv = scripts::SAVE_SESSION.prepare_invoke();
        inv.key(self.key(id))
            .arg(p.value.as_str())
            .arg(p.ttl_ms)
            .arg(id)
            .arg(if update_only { "1" } else { "0" })
            .arg(read)
            .arg(p.sid_label.as_str())
            .arg(p.sub_label.as_str())
            .arg(mode.as_arg())
            .arg(p.score_ms)
            .arg(p.now_ms);
        inv
    }

    /// The mode of a save's first attempt: on one server the script adds the index entries;
    /// on a cluster a new session's entries are added first, an existing session's only when
    /// the script says they are missing.
    pub(crate) fn first_mode(&self, update_only: bool) -> IndexMode {
        match (self.topology, update_only) {
            (Topology::Standalone, _) => IndexMode::Here,
            (Topology::Cluster, true) => IndexMode::Ask,
            (Topology::Cluster, false) => IndexMode::Done,
        }
    }

    /// The index entries of `p` under `id` (a cluster save's first step: one script per
    /// index, each touching one key).
    pub(crate) fn index_scripts(
        &self,
        id: &str,
        p: &Prepared,
    ) -> Vec<redis::ScriptInvocation<'static>> {
        [&p.sid_label, &p.sub_label]
            .into_iter()
            .filter(|label| !label.is_empty())
            .map(|label| {
                let mut inv = scripts::INDEX_ADD.prepare_invoke();
                inv.key(format!("{label}:z"))
                    .arg(id)
                    .arg(p.score_ms)
                    .arg(p.now_ms);
                inv
            })
            .collect()
    }

    pub(crate) fn delete_script(&self, id: &str) -> redis::ScriptInvocation<'static> {
        let mut inv = scripts::DELETE_SESSION.prepare_invoke();
        inv.key(self.key(id)).arg(id).arg(match self.topology {
            Topology::Standalone => "1",
            Topology::Cluster => "0",
        });
        inv
    }

    /// The commands removing session `id` from the indexes `labels` (after a cluster delete;
    /// one server removes them in the delete script).
    pub(crate) fn unindex_cmds(&self, id: &str, labels: &[String]) -> Vec<redis::Cmd> {
        if self.topology == Topology::Standalone {
            return Vec::new();
        }
        Self::unindex_ended_cmds(id, labels)
    }

    /// The commands removing session `id`, ended by [`END_SESSION`](scripts::END_SESSION)
    /// (which leaves its index entries, on any topology), from the indexes `labels`.
    pub(crate) fn unindex_ended_cmds(id: &str, labels: &[String]) -> Vec<redis::Cmd> {
        labels
            .iter()
            .filter(|label| !label.is_empty())
            .map(|label| redis::Cmd::zrem(format!("{label}:z"), id))
            .collect()
    }

    /// The indexes a logout token names: by `sid` when the token has one (sessions of the
    /// same issuer, or recording none), else by `sub` of the same issuer. `None` when the
    /// token names nothing.
    pub(crate) fn logout_target(&self, claims: &LogoutTokenClaims) -> Option<LogoutTarget> {
        match (&claims.sid, &claims.sub) {
            (Some(sid), _) if sid.is_empty() => None,
            (Some(sid), sub) => Some(LogoutTarget {
                field: "sid",
                labels: vec![self.sid_index(&claims.iss, sid), self.sid_index("", sid)],
                ending: if sub.is_some() {
                    Ending::Selected
                } else {
                    Ending::Labelled
                },
            }),
            (None, Some(sub)) => Some(LogoutTarget {
                field: "sub",
                labels: vec![self.sub_index(&claims.iss, sub)],
                ending: Ending::Labelled,
            }),
            (None, None) => None,
        }
    }

    /// Whether the stored `value` of session `id` is a session the logout token ends, by the
    /// core's rule ([`logout_token_selects`]). A value that does not decrypt is no session
    /// (it is dropped at its expiry).
    pub(crate) fn selected(
        &self,
        id: &str,
        value: Option<String>,
        claims: &LogoutTokenClaims,
    ) -> bool {
        value
            .and_then(|v| self.decode(id, v))
            .is_some_and(|state| logout_token_selects(claims, &state))
    }

    /// The one-server script ending every session of `target`, atomically.
    pub(crate) fn logout_script(&self, target: &LogoutTarget) -> redis::ScriptInvocation<'static> {
        let mut inv = scripts::LOGOUT.prepare_invoke();
        inv.arg(self.session_prefix()).arg(target.field);
        for label in &target.labels {
            inv.arg(label.as_str());
        }
        inv
    }

    /// The ids listed in the index `label` whose entries have not passed (a cluster logout's
    /// first step).
    pub(crate) fn list_cmd(&self, label: &str, now: UnixTime) -> redis::Cmd {
        let mut cmd = redis::cmd("ZRANGEBYSCORE");
        cmd.arg(format!("{label}:z"))
            .arg(format!("({}", now.as_secs().saturating_mul(1000)))
            .arg("+inf");
        cmd
    }

    /// The script ending session `id` if it still carries `label` (a cluster logout's second
    /// step).
    pub(crate) fn end_script(
        &self,
        id: &str,
        target: &LogoutTarget,
        label: &str,
    ) -> redis::ScriptInvocation<'static> {
        let mut inv = scripts::END_SESSION.prepare_invoke();
        inv.key(self.key(id)).arg(target.field).arg(label);
        inv
    }
}

/// Who adds a save's index entries (see [`scripts::SAVE_SESSION`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IndexMode {
    /// The save script itself (one server).
    Here,
    /// The caller did, before the save (cluster).
    Done,
    /// Nobody yet: the script answers [`MISSING_INDEX`] if the session needs entries.
    Ask,
}

impl IndexMode {
    fn as_arg(self) -> &'static str {
        match self {
            IndexMode::Here => "here",
            IndexMode::Done => "done",
            IndexMode::Ask => "ask",
        }
    }
}

/// What the save script answers in mode [`IndexMode::Ask`] when index entries must be added
/// first.
pub(crate) const MISSING_INDEX: i64 = 4;

/// The indexes a back-channel logout ends the sessions of, and the session field that must
/// still name them.
pub(crate) struct LogoutTarget {
    field: &'static str,
    pub(crate) labels: Vec<String>,
    pub(crate) ending: Ending,
}

/// Which listed sessions a back-channel logout ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Every one still carrying the index's label (a token with a `sid` or a `sub`): on one
    /// server, in one atomic script.
    Labelled,
    /// Only those the core's rule selects, read one by one (a token with both `sid` and
    /// `sub`: sessions of that `sid` and that user only).
    Selected,
}

/// What ending or deleting one session answered: whether it was deleted, and its labels.
pub(crate) fn ended(reply: (i64, String, String)) -> (bool, [String; 2]) {
    (reply.0 == 1, [reply.1, reply.2])
}

// ---------------------------------------------------------------------------------------------
// Session store (blocking)
// ---------------------------------------------------------------------------------------------

/// Sessions in Redis, keyed by a session id held in a cookie (blocking). See the
/// [module documentation](self).
pub struct RedisStateStore {
    sessions: Sessions,
    pool: Pool,
}

impl std::fmt::Debug for RedisStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStateStore")
            .field("prefix", &self.sessions.prefix)
            .field("cookie_name", &self.sessions.cookie_name)
            .finish_non_exhaustive()
    }
}

/// Builds a [`RedisStateStore`] (or, with feature `redis-tokio`, an
/// [`AsyncRedisStateStore`]); start with [`RedisStateStore::builder`].
#[derive(Clone)]
#[must_use]
pub struct RedisStateStoreBuilder {
    secrets: Vec<Secret>,
    endpoint: Endpoint,
    prefix: String,
    cookie_name: String,
    secure: bool,
    absolute: Duration,
    inactivity: Duration,
    cache_capacity: usize,
}

impl std::fmt::Debug for RedisStateStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStateStoreBuilder")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStateStore {
    /// A builder using the configuration's secrets and the Redis at `redis_url` (see
    /// [the URL forms](self#urls)).
    pub fn builder(config: &Config, redis_url: impl Into<String>) -> RedisStateStoreBuilder {
        Self::builder_with_secrets(
            config.secrets().iter().map(|s| s.expose().to_owned()),
            redis_url,
        )
    }

    /// A builder with explicit secrets (each at least 32 bytes; the first encrypts).
    pub fn builder_with_secrets<S: Into<String>>(
        secrets: impl IntoIterator<Item = S>,
        redis_url: impl Into<String>,
    ) -> RedisStateStoreBuilder {
        RedisStateStoreBuilder {
            secrets: secrets.into_iter().map(Secret::new).collect(),
            endpoint: Endpoint::new(redis_url.into()),
            prefix: DEFAULT_KEY_PREFIX.to_owned(),
            cookie_name: DEFAULT_SESSION_ID_COOKIE.to_owned(),
            secure: true,
            absolute: DEFAULT_ABSOLUTE_DURATION,
            inactivity: DEFAULT_INACTIVITY_DURATION,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
        }
    }

    /// The name of the session-id cookie.
    pub fn cookie(&self) -> &str {
        &self.sessions.cookie_name
    }

    /// The Redis key of the session with this id (for operations and tests).
    pub fn session_key(&self, id: &str) -> String {
        self.sessions.key(id)
    }

    fn script(
        &self,
        what: &str,
        inv: &redis::ScriptInvocation<'static>,
    ) -> Result<i64, StoreError> {
        self.pool.run(what, |c| inv.invoke(c))
    }

    /// Writes `p` under `id` (see [`Sessions::save_script`]); on a cluster, adds the index
    /// entries first when the session needs them. Answers as [`scripts::SAVE_SESSION`]
    /// (never [`MISSING_INDEX`]).
    fn save(
        &self,
        id: &str,
        p: &Prepared,
        update_only: bool,
        read: &str,
    ) -> Result<i64, StoreError> {
        let s = &self.sessions;
        let what = "writing the session";
        let mode = s.first_mode(update_only);
        if s.topology == Topology::Cluster && mode == IndexMode::Done {
            for inv in s.index_scripts(id, p) {
                self.script("indexing the session", &inv)?;
            }
        }
        let answer = self.script(what, &s.save_script(id, p, update_only, read, mode))?;
        if answer != MISSING_INDEX {
            return Ok(answer);
        }
        for inv in s.index_scripts(id, p) {
            self.script("indexing the session", &inv)?;
        }
        self.script(
            what,
            &s.save_script(id, p, update_only, read, IndexMode::Done),
        )
    }

    /// Deletes session `id` and its index entries.
    fn delete_id(&self, id: &str) -> Result<(), StoreError> {
        let s = &self.sessions;
        s.decoded.remove(id);
        let inv = s.delete_script(id);
        let reply: (i64, String, String) =
            self.pool.run("deleting the session", |c| inv.invoke(c))?;
        let (_, labels) = ended(reply);
        for cmd in s.unindex_cmds(id, &labels) {
            let _: i64 = self.pool.run("unindexing the session", |c| cmd.query(c))?;
        }
        Ok(())
    }
}

impl RedisStateStoreBuilder {
    /// The prefix of every key (default [`DEFAULT_KEY_PREFIX`]); give each application
    /// sharing a Redis its own.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The session-id cookie's name (default [`DEFAULT_SESSION_ID_COOKIE`]).
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = name.into();
        self
    }

    /// Whether the cookie carries `Secure` (default `true`).
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Sets `Secure` from the application's base URL: off only for plain http on loopback.
    pub fn for_app_base_url(mut self, url: &str) -> Self {
        self.secure = !is_loopback_http(url);
        self
    }

    /// How long a session lasts from its creation at most (default 7 days).
    pub fn absolute_duration(mut self, duration: Duration) -> Self {
        self.absolute = duration;
        self
    }

    /// How long a session lasts without being used (default 3 days).
    pub fn inactivity_duration(mut self, duration: Duration) -> Self {
        self.inactivity = duration;
        self
    }

    /// How many decoded sessions to keep (default [`DEFAULT_CACHE_CAPACITY`]; `0` disables
    /// the cache): a read whose stored value is byte for byte one this store decoded before
    /// reuses that session instead of decrypting and parsing it again. Every read still
    /// fetches the value from Redis, so writes and deletes by other instances are seen at
    /// once.
    pub fn cache_capacity(mut self, entries: usize) -> Self {
        self.cache_capacity = entries;
        self
    }

    /// How long to wait for a connection to Redis (default 2 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.endpoint.connect_timeout = timeout;
        self
    }

    /// How long to wait for one command's reply (default 2 s).
    pub fn io_timeout(mut self, timeout: Duration) -> Self {
        self.endpoint.io_timeout = timeout;
        self
    }

    fn sessions(&self) -> Result<Sessions, StoreError> {
        check_secrets(&self.secrets)?;
        if !chunks::is_valid_name(&self.cookie_name) {
            return Err(StoreError::new(
                "Redis store: the cookie name is not a valid cookie name",
            ));
        }
        if self.absolute.as_secs() == 0 || self.inactivity.as_secs() == 0 {
            return Err(StoreError::new(
                "Redis store: session durations must be at least one second",
            ));
        }
        Ok(Sessions {
            prefix: self.prefix.clone(),
            topology: self.endpoint.topology(),
            codec: codec(&self.secrets, SESSION_SALT),
            decoded: DecodedSessions::new(self.cache_capacity),
            cookie_name: self.cookie_name.clone(),
            secure: self.secure,
            absolute: self.absolute.as_secs(),
            inactivity: self.inactivity.as_secs(),
        })
    }

    /// The blocking store. Does not connect: Redis is reached on first use. Errors: no
    /// secret, a short secret, an invalid cookie name or URL, a zero duration.
    pub fn build(self) -> Result<RedisStateStore, StoreError> {
        Ok(RedisStateStore {
            sessions: self.sessions()?,
            pool: Pool::new(self.endpoint)?,
        })
    }

    /// The async store (feature `redis-tokio`; use it inside a tokio runtime).
    #[cfg(feature = "redis-tokio")]
    pub fn build_async(self) -> Result<AsyncRedisStateStore, StoreError> {
        Ok(AsyncRedisStateStore::new(
            self.sessions()?,
            pool::AsyncPool::new(self.endpoint)?,
        ))
    }
}

impl StateStore for RedisStateStore {
    type Options = CookieOptions;

    /// The session whose id the cookie carries, or `None` (no cookie, unknown id, expired or
    /// unreadable session — its cookie is then cleared). A session last written more than
    /// [`TOUCH_INTERVAL`] seconds ago is rewritten (rolling expiry).
    fn get(
        &self,
        options: &mut CookieOptions,
        now: UnixTime,
    ) -> Result<Option<Arc<StateData>>, StoreError> {
        let s = &self.sessions;
        let Some(id) = s.id(options).map(str::to_owned) else {
            return Ok(None);
        };
        let key = s.key(&id);
        let value: Option<String> = self.pool.run("reading the session", |c| {
            redis::Cmd::hget(&key, "v").query(c)
        })?;
        match s.load(&id, value, now.as_secs())? {
            Loaded::Valid(state) => Ok(Some(state)),
            Loaded::Touch(p) => {
                if self.save(&id, &p, true, "")? == 1 {
                    let state = Arc::clone(&p.state);
                    s.remember(&id, p);
                    Ok(Some(state))
                } else {
                    s.clear_cookie(options);
                    Ok(None)
                }
            }
            Loaded::Gone { leftover } => {
                if leftover {
                    self.delete_id(&id)?;
                }
                s.clear_cookie(options);
                Ok(None)
            }
        }
    }

    /// Writes the session (stamping `created_at` when 0 and `last_active_at = now`) under the
    /// cookie's id when that id names a session of the same user, else under a new id whose
    /// cookie is set once the session is written.
    fn set(
        &self,
        state: &StateData,
        options: &mut CookieOptions,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let s = &self.sessions;
        let Some(p) = s.prepare(state, now.as_secs())? else {
            return self.delete(options, now);
        };
        if let Some(id) = s.id(options).map(str::to_owned)
            && self.save(&id, &p, true, "")? == 1
        {
            s.remember(&id, p);
            return Ok(());
        }
        let id = random_token(SESSION_ID_BYTES)?;
        self.save(&id, &p, false, "")?;
        s.set_cookie(options, &id, p.cookie_max_age);
        s.remember(&id, p);
        Ok(())
    }

    /// Applies the update to the stored session as a compare-and-set (recomputed when another
    /// request wrote the session in between), so concurrent updates all land and a session
    /// deleted meanwhile stays deleted.
    fn update(
        &self,
        update: &SessionUpdate,
        options: &mut CookieOptions,
        now: UnixTime,
    ) -> Result<Updated, StoreError> {
        let s = &self.sessions;
        let Some(id) = s.id(options).map(str::to_owned) else {
            return Ok(Updated::Gone);
        };
        let key = s.key(&id);
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let value: Option<String> = self.pool.run("reading the session", |c| {
                redis::Cmd::hget(&key, "v").query(c)
            })?;
            let (read, p) = match s.updated(&id, value, update, now.as_secs())? {
                UpdateStep::Gone => return Ok(Updated::Gone),
                UpdateStep::Unchanged => return Ok(Updated::Saved),
                UpdateStep::Write { read, prepared } => (read, *prepared),
            };
            let answer = self.save(&id, &p, true, &read)?;
            if let Some(updated) = update_written(answer) {
                if updated == Updated::Saved {
                    s.remember(&id, p);
                }
                return Ok(updated);
            }
        }
        Err(update_contended())
    }

    /// Deletes the session and clears its cookie.
    fn delete(&self, options: &mut CookieOptions, _now: UnixTime) -> Result<(), StoreError> {
        let s = &self.sessions;
        if let Some(id) = s.id(options).map(str::to_owned) {
            self.delete_id(&id)?;
        }
        s.clear_cookie(options);
        Ok(())
    }

    /// Deletes every session the logout token ends (by `sid`, else by `sub`, of its issuer)
    /// through the indexes: in one atomic script on one server, index by index and session
    /// by session on a cluster (see the [module documentation](self#redis-cluster)).
    fn delete_by_logout_token(
        &self,
        claims: &LogoutTokenClaims,
        _options: &mut CookieOptions,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let s = &self.sessions;
        let Some(target) = s.logout_target(claims) else {
            return Ok(());
        };
        let what = "deleting sessions by logout token";
        if s.topology == Topology::Standalone && target.ending == Ending::Labelled {
            let inv = s.logout_script(&target);
            let _: i64 = self.pool.run(what, |c| inv.invoke(c))?;
            return Ok(());
        }
        for label in &target.labels {
            let list = s.list_cmd(label, now);
            let ids: Vec<String> = self.pool.run(what, |c| list.query(c))?;
            for id in ids {
                if target.ending == Ending::Selected {
                    let key = s.key(&id);
                    let value: Option<String> = self
                        .pool
                        .run(what, |c| redis::Cmd::hget(&key, "v").query(c))?;
                    if !s.selected(&id, value, claims) {
                        continue;
                    }
                }
                let inv = s.end_script(&id, &target, label);
                let reply: (i64, String, String) = self.pool.run(what, |c| inv.invoke(c))?;
                if let (true, labels) = ended(reply) {
                    for cmd in Sessions::unindex_ended_cmds(&id, &labels) {
                        let _: i64 = self.pool.run(what, |c| cmd.query(c))?;
                    }
                }
            }
        }
        Ok(())
    }
    /// Records the logout token in Redis (`SET … NX EXAT`), so a token replayed to any
    /// instance sharing this Redis is refused.
    fn record_logout_token_id(
        &self,
        key: &str,
        until: UnixTime,
        now: UnixTime,
    ) -> Result<LogoutTokenIdRecord, StoreError> {
        let cmd = record_logout_token_id_cmd(&self.sessions.prefix, key, until, now);
        let reply: Option<String> = self
            .pool
            .run("recording a logout token", |c| cmd.query(c))?;
        Ok(logout_token_id_recorded(reply))
    }
}

// ---------------------------------------------------------------------------------------------
// Transactions
// ---------------------------------------------------------------------------------------------

/// Settings and pure logic of a transaction store.
pub(crate) struct Transactions {
    prefix: String,
    codec: CookieCodec,
    secure: bool,
    max_age: u64,
}

impl Transactions {
    pub(crate) fn key(&self, key: &str) -> String {
        format!("{}t:{}", self.prefix, hex_sha256(&[key]))
    }

    fn attributes(&self) -> &'static str {
        kit::cookie_attributes(self.secure)
    }

    /// The encrypted value and TTL (ms) of a transaction, and the binding cookie's value and
    /// `Max-Age`; `None` when it is already past its max age.
    pub(crate) fn prepare(
        &self,
        key: &str,
        transaction: &TransactionData,
        now: UnixTime,
    ) -> Result<Option<(String, u64, String, u64)>, StoreError> {
        if !chunks::is_valid_name(key) {
            return Err(StoreError::new(
                "Redis transaction store: the transaction key is not a valid cookie name",
            ));
        }
        let tx = transaction.written_at(now);
        let now = now.as_secs();
        let expires_at = tx.created_at.saturating_add(self.max_age);
        if expires_at <= now {
            return Ok(None);
        }
        let binding = random_token(BINDING_BYTES)?;
        // Stored as `{"b": binding, "t": transaction}`.
        let json = serde_json::to_vec(&serde_json::json!({ "b": binding, "t": tx }))
            .map_err(|e| StoreError::with_source("cannot serialise the transaction", e))?;
        let max_age = (expires_at - now).min(self.max_age);
        Ok(Some((
            self.codec.encrypt(&json)?,
            millis(max_age),
            binding,
            max_age,
        )))
    }

    pub(crate) fn set_cookie(&self, options: &mut CookieOptions, key: &str, b: &str, age: u64) {
        options.set_cookie(key, b, &kit::cookie_attributes_max_age(self.secure, age));
    }

    pub(crate) fn clear_cookie(&self, options: &mut CookieOptions, key: &str) {
        if options.cookie(key).is_some() {
            options.remove_cookie(key, self.attributes());
        }
    }

    /// The transaction in `value` if this browser started it (its binding cookie matches)
    /// and it is not past its max age.
    pub(crate) fn load(
        &self,
        key: &str,
        value: Option<String>,
        options: &CookieOptions,
        now: UnixTime,
    ) -> Option<TransactionData> {
        let json = self.codec.decrypt(&value?)?;
        let mut stored: serde_json::Value = serde_json::from_slice(&json).ok()?;
        let binding = stored.get("b")?.as_str()?;
        let cookie = options.cookie(key)?;
        // Compare digests: no early exit on the secret binding's bytes.
        if hex_sha256(&[cookie]) != hex_sha256(&[binding]) {
            return None;
        }
        let tx: TransactionData = serde_json::from_value(stored.get_mut("t")?.take()).ok()?;
        (tx.created_at.saturating_add(self.max_age) > now.as_secs()).then_some(tx)
    }
}

/// Login transactions in Redis (blocking), each bound to the browser that started the login
/// by a random value in a cookie named after the transaction key (`_a0_tx.{state}`): a
/// callback URL replayed in another browser finds no transaction (login CSRF).
pub struct RedisTransactionStore {
    transactions: Transactions,
    pool: Pool,
}

impl std::fmt::Debug for RedisTransactionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTransactionStore")
            .field("prefix", &self.transactions.prefix)
            .finish_non_exhaustive()
    }
}

/// Builds a [`RedisTransactionStore`] (or an [`AsyncRedisTransactionStore`]); start with
/// [`RedisTransactionStore::builder`].
#[derive(Clone)]
#[must_use]
pub struct RedisTransactionStoreBuilder {
    secrets: Vec<Secret>,
    endpoint: Endpoint,
    prefix: String,
    secure: bool,
    max_age: Duration,
}

impl std::fmt::Debug for RedisTransactionStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTransactionStoreBuilder")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisTransactionStore {
    /// A builder using the configuration's secrets and the Redis at `redis_url`.
    pub fn builder(config: &Config, redis_url: impl Into<String>) -> RedisTransactionStoreBuilder {
        Self::builder_with_secrets(
            config.secrets().iter().map(|s| s.expose().to_owned()),
            redis_url,
        )
    }

    /// A builder with explicit secrets (each at least 32 bytes; the first encrypts).
    pub fn builder_with_secrets<S: Into<String>>(
        secrets: impl IntoIterator<Item = S>,
        redis_url: impl Into<String>,
    ) -> RedisTransactionStoreBuilder {
        RedisTransactionStoreBuilder {
            secrets: secrets.into_iter().map(Secret::new).collect(),
            endpoint: Endpoint::new(redis_url.into()),
            prefix: DEFAULT_KEY_PREFIX.to_owned(),
            secure: true,
            max_age: Duration::from_secs(DEFAULT_TRANSACTION_MAX_AGE),
        }
    }
}

impl RedisTransactionStoreBuilder {
    /// The prefix of every key (default [`DEFAULT_KEY_PREFIX`]).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Whether the binding cookie carries `Secure` (default `true`).
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Sets `Secure` from the application's base URL: off only for plain http on loopback.
    pub fn for_app_base_url(mut self, url: &str) -> Self {
        self.secure = !is_loopback_http(url);
        self
    }

    /// How long a login may take (default [`DEFAULT_TRANSACTION_MAX_AGE`] seconds).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// How long to wait for a connection to Redis (default 2 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.endpoint.connect_timeout = timeout;
        self
    }

    /// How long to wait for one command's reply (default 2 s).
    pub fn io_timeout(mut self, timeout: Duration) -> Self {
        self.endpoint.io_timeout = timeout;
        self
    }

    fn transactions(&self) -> Result<Transactions, StoreError> {
        check_secrets(&self.secrets)?;
        if self.max_age.as_secs() == 0 {
            return Err(StoreError::new(
                "Redis store: transaction max_age must be at least one second",
            ));
        }
        Ok(Transactions {
            prefix: self.prefix.clone(),
            codec: codec(&self.secrets, TRANSACTION_SALT),
            secure: self.secure,
            max_age: self.max_age.as_secs(),
        })
    }

    /// The blocking store (connects on first use).
    pub fn build(self) -> Result<RedisTransactionStore, StoreError> {
        Ok(RedisTransactionStore {
            transactions: self.transactions()?,
            pool: Pool::new(self.endpoint)?,
        })
    }

    /// The async store (feature `redis-tokio`; use it inside a tokio runtime).
    #[cfg(feature = "redis-tokio")]
    pub fn build_async(self) -> Result<AsyncRedisTransactionStore, StoreError> {
        Ok(AsyncRedisTransactionStore::new(
            self.transactions()?,
            pool::AsyncPool::new(self.endpoint)?,
        ))
    }
}

impl TransactionStore for RedisTransactionStore {
    type Options = CookieOptions;

    /// The transaction under `key` if this browser started it, else `None`.
    fn get(
        &self,
        key: &str,
        options: &mut CookieOptions,
        now: UnixTime,
    ) -> Result<Option<TransactionData>, StoreError> {
        if !chunks::is_valid_name(key) || options.cookie(key).is_none() {
            return Ok(None);
        }
        let k = self.transactions.key(key);
        let value: Option<String> = self
            .pool
            .run("reading the transaction", |c| redis::Cmd::get(&k).query(c))?;
        Ok(self.transactions.load(key, value, options, now))
    }

    /// Stores the transaction for its max age and sets its binding cookie.
    fn set(
        &self,
        key: &str,
        transaction: &TransactionData,
        options: &mut CookieOptions,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let t = &self.transactions;
        let Some((value, ttl_ms, binding, max_age)) = t.prepare(key, transaction, now)? else {
            return self.delete(key, options, now);
        };
        let k = t.key(key);
        let () = self.pool.run("writing the transaction", |c| {
            redis::Cmd::pset_ex(&k, value.as_str(), ttl_ms).query(c)
        })?;
        t.set_cookie(options, key, &binding, max_age);
        Ok(())
    }

    /// Deletes the transaction and its binding cookie.
    fn delete(
        &self,
        key: &str,
        options: &mut CookieOptions,
        _now: UnixTime,
    ) -> Result<(), StoreError> {
        if !chunks::is_valid_name(key) {
            return Ok(());
        }
        let k = self.transactions.key(key);
        let _: i64 = self
            .pool
            .run("deleting the transaction", |c| redis::Cmd::del(&k).query(c))?;
        self.transactions.clear_cookie(options, key);
        Ok(())
    }
}
