//! [`RedisRevocations`]: the cookie store's revocation list in Redis, shared by every
//! instance, so a logout or back-channel logout received by one instance ends the session on
//! all of them.

use super::DEFAULT_KEY_PREFIX;
use super::pool::{Endpoint, Pool};
use crate::store::revocation::RevocationList;
use crate::store::{LogoutTokenIdRecord, StoreError};
use auth0_server_protocol::session::revocation::{Revocation, hashed_key};
use auth0_server_protocol::time::UnixTime;
use redis::Script;
use std::sync::LazyLock;
use std::time::Duration;

/// Records an entry, keeping the later `created_until` of an existing one. `KEYS[1]` the
/// entry, `ARGV[1]` its `created_until` (Unix seconds), `ARGV[2]` its `keep_until` (Unix
/// seconds; the key expires then, or later if an earlier entry said so), `ARGV[3]` now.
static REVOKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local cur = tonumber(redis.call('GET', KEYS[1]) or '-1')
if cur < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'EXAT', ARGV[2])
else
  local ttl = redis.call('TTL', KEYS[1])
  if ttl >= 0 and ttl < tonumber(ARGV[2]) - tonumber(ARGV[3]) then
    redis.call('EXPIREAT', KEYS[1], ARGV[2])
  end
end
return 1
"#,
    )
});

/// A revocation list in Redis (blocking). Keys are `{prefix}v:{SHA-256 of the entry}`: no
/// issuer, `sid` or user id in clear; each expires when every session it can match has.
/// A cookie-session read costs one `MGET`.
///
/// ```no_run
/// use auth0_server::store::cookie::CookieStateStore;
/// use auth0_server::store::redis::RedisRevocations;
/// # let config = auth0_server::Config::builder("t.auth0.com", "id").client_secret("s")
/// #     .secret("a-secret-of-at-least-32-bytes-long!!").build()?;
/// let store = CookieStateStore::builder(&config)
///     .revocations(RedisRevocations::builder("redis://127.0.0.1:6379/").build()?)
///     .build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RedisRevocations {
    prefix: String,
    pool: Pool,
}

impl std::fmt::Debug for RedisRevocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRevocations")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Builds a [`RedisRevocations`]; start with [`RedisRevocations::builder`].
#[derive(Clone)]
#[must_use]
pub struct RedisRevocationsBuilder {
    prefix: String,
    endpoint: Endpoint,
}

impl std::fmt::Debug for RedisRevocationsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it can carry a password.
        f.debug_struct("RedisRevocationsBuilder")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisRevocations {
    /// A builder for the list at `redis_url` (the URL forms of the [module](super)).
    pub fn builder(redis_url: impl Into<String>) -> RedisRevocationsBuilder {
        RedisRevocationsBuilder {
            prefix: DEFAULT_KEY_PREFIX.to_owned(),
            endpoint: Endpoint::new(redis_url.into()),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}v:{}", self.prefix, hashed_key(key))
    }
}

impl RedisRevocationsBuilder {
    /// The prefix of every key (default [`DEFAULT_KEY_PREFIX`]).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
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

    /// Checks the URL and returns the list (connections are opened on first use).
    pub fn build(self) -> Result<RedisRevocations, StoreError> {
        Ok(RedisRevocations {
            prefix: self.prefix,
            pool: Pool::new(self.endpoint)?,
        })
    }
}

impl RevocationList for RedisRevocations {
    fn revoke(&self, r: &Revocation, now: UnixTime) -> Result<(), StoreError> {
        if r.keep_until <= now {
            return Ok(());
        }
        let mut inv = REVOKE.prepare_invoke();
        inv.key(self.key(&r.key))
            .arg(r.created_until.as_secs())
            .arg(r.keep_until.as_secs())
            .arg(now.as_secs());
        let _: i64 = self
            .pool
            .run("recording an ended session", |c| inv.invoke(c))?;
        Ok(())
    }

    fn lookup(&self, keys: &[String], _now: UnixTime) -> Result<Vec<Option<UnixTime>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let redis_keys: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        let values: Vec<Option<u64>> = self.pool.run("reading ended sessions", |c| {
            redis::cmd("MGET").arg(&redis_keys).query(c)
        })?;
        Ok(values
            .into_iter()
            .map(|v| v.map(UnixTime::from_secs))
            .collect())
    }

    /// Records the logout token in Redis (`SET … NX EXAT`), shared by every instance.
    fn record_logout_token_id(
        &self,
        key: &str,
        until: UnixTime,
        now: UnixTime,
    ) -> Result<LogoutTokenIdRecord, StoreError> {
        let cmd = super::record_logout_token_id_cmd(&self.prefix, key, until, now);
        let reply: Option<String> = self
            .pool
            .run("recording a logout token", |c| cmd.query(c))?;
        Ok(super::logout_token_id_recorded(reply))
    }
}
