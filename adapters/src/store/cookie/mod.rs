//! Encrypted cookie stores: stateless sessions and login transactions kept
//! in the browser, encrypted and authenticated with the application's secret.
//!
//! * **Format.** A value is the JSON of the Python SDK's session shape, encrypted as a
//!   compact JWE (`alg=dir`, `enc=A256CBC-HS512`) under `HKDF-SHA-256(secret, salt =
//!   identifier)` — the Python SDK's format ([`codec`]). The session identifier (default
//!   [`DEFAULT_SESSION_COOKIE`]) is both the salt and the cookie name; a transaction's salt
//!   and cookie name are its key (`_a0_tx.{state}`), so two logins in two tabs do not
//!   clobber each other.
//! * **Rotation.** Built from a [`Config`], the stores encrypt with the first of
//!   [`Config::secrets`] and decrypt with any of them.
//! * **Size.** Values longer than one cookie can carry are split across `name.0`, `name.1`, …
//!   ([`chunks`]); surplus chunks are deleted when a value shrinks.
//! * **Attributes.** `HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age=…`. `Secure` can be
//!   turned off for an application served over plain http on loopback
//!   ([`CookieStateStoreBuilder::for_app_base_url`]).
//! * **Expiry, enforced by the server.** The encrypted session carries
//!   `internal.created_at` and `internal.last_active_at`. A session is over after its
//!   absolute duration (default 7 days from creation) or its inactivity duration (default
//!   3 days from the last use), whichever comes first; a client replaying a cookie after
//!   that gets no session, whatever the cookie's `Max-Age` said. Reading a session more than
//!   [`TOUCH_INTERVAL`] seconds after its last write rewrites it with `last_active_at =
//!   now` (rolling expiry); reads in between write nothing. Transactions last
//!   [`DEFAULT_TRANSACTION_MAX_AGE`] seconds from `created_at`.
//! * **Failure is "no session".** A tampered, truncated, incomplete, foreign, malformed or
//!   expired cookie reads as `Ok(None)` and its cookies are cleared; it is never an error or
//!   a panic.
//! * **Warm path.** Each session store keeps a bounded cache (default
//!   [`DEFAULT_CACHE_CAPACITY`] entries) from cookie values to decoded sessions, so an
//!   unchanged cookie is decrypted once.
//! * **Logout ends the session, not just the cookie.** Logout records the session in a
//!   revocation list, and a back-channel logout its `sid` (or `sub`), each until every
//!   session it can match has expired; a cookie of an ended session — a copy taken before
//!   logout, or one a refresh in flight writes back — is no session. The list is in the
//!   process by default ([`MemoryRevocations`]); with several instances share one in Redis
//!   ([`CookieStateStoreBuilder::revocations`]). Auth0's other SDKs cannot end a stateless
//!   session from the server at all.
//!
//! ```
//! use auth0_server::protocol::config::Config;
//! use auth0_server::protocol::session::StateData;
//! use auth0_server::store::{CookieOptions, StateStore};
//! use auth0_server::store::cookie::CookieStateStore;
//!
//! let config = Config::builder("tenant.auth0.com", "client-id")
//!     .client_secret("client-secret")
//!     .secret("a-secret-of-at-least-32-bytes-long!!")
//!     .build()?;
//! let store = CookieStateStore::builder(&config)
//!     .for_app_base_url("http://localhost:3000") // plain http on loopback: no `Secure`
//!     .build()?;
//!
//! // Request 1 logs in: the session goes out as Set-Cookie headers.
//! let mut response = CookieOptions::new();
//! let session: StateData = serde_json::from_str(r#"{"user":{"sub":"auth0|1"}}"#)?;
//! // The client reads its clock and hands `now` to every store call.
//! let now = auth0_server::clock::Clock::system().now();
//! store.set(&session, &mut response, now)?;
//! let set_cookie = response.set_cookie_headers()[0].to_str()?;
//! assert!(set_cookie.starts_with("_a0_session.0=eyJ"));
//! assert!(set_cookie.ends_with("; HttpOnly; SameSite=Lax; Path=/; Max-Age=259200"));
//!
//! // Request 2 carries the cookie back.
//! let mut headers = http::HeaderMap::new();
//! let pair = set_cookie.split(';').next().unwrap();
//! headers.insert(http::header::COOKIE, pair.parse()?);
//! let mut request = CookieOptions::from_request_headers(&headers);
//! let loaded = store.get(&mut request, now)?.expect("a session");
//! assert_eq!(loaded.sub(), Some("auth0|1"));
//! assert!(request.set_cookie_headers().is_empty(), "a fresh session is not rewritten");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod chunks;
pub mod codec;

mod cache;

use std::time::Duration;

use auth0_server_protocol::config::Config;
use auth0_server_protocol::effect::LogoutTokenClaims;
use auth0_server_protocol::secret::Secret;
use auth0_server_protocol::session::{SessionLifetime, StateData};
use auth0_server_protocol::transaction::{
    MAX_PENDING_LOGINS, TRANSACTION_KEY_PREFIX, TransactionData, pending_logins_to_drop,
};

use self::cache::{Decoded, SessionCache};
use self::chunks::{Parts, Read};
use self::codec::CookieCodec;
use crate::store::kit::{self, cookie_attributes, cookie_attributes_max_age};
use crate::store::revocation::{MemoryRevocations, RevocationList};
use crate::store::{CookieOptions, LogoutTokenIdRecord, StateStore, StoreError, TransactionStore};
use auth0_server_protocol::session::{self, revocation};
use auth0_server_protocol::time::UnixTime;
use std::sync::Arc;

/// The default session cookie name (and HKDF salt): `_a0_session`, as in the Python SDK.
pub const DEFAULT_SESSION_COOKIE: &str = "_a0_session";
/// Default absolute session duration: 7 days from creation.
pub const DEFAULT_ABSOLUTE_DURATION: Duration =
    auth0_server_protocol::session::DEFAULT_ABSOLUTE_LIFETIME;
/// Default inactivity duration: 3 days from the last use.
pub const DEFAULT_INACTIVITY_DURATION: Duration =
    auth0_server_protocol::session::DEFAULT_INACTIVITY_LIMIT;
/// A session read more than this many seconds after its last write is rewritten with
/// `last_active_at = now` (rolling expiry without a write on every request).
pub use auth0_server_protocol::session::TOUCH_INTERVAL;
/// Default number of decoded sessions a [`CookieStateStore`] caches.
pub const DEFAULT_CACHE_CAPACITY: usize = 1024;
/// Default lifetime of a login transaction, in seconds (1 hour).
pub const DEFAULT_TRANSACTION_MAX_AGE: u64 =
    auth0_server_protocol::transaction::TRANSACTION_MAX_AGE.as_secs();

/// Whether an application at `url` is served over plain http on a loopback host
/// (`localhost`, `*.localhost`, `127.0.0.0/8`, `[::1]`), where browsers would not send
/// `Secure` cookies back (Safari) or where `Secure` is pointless.
pub fn is_loopback_http(url: &str) -> bool {
    let Ok(url) = url::Url::parse(url) else {
        return false;
    };
    if url.scheme() != "http" {
        return false;
    }
    match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn check_secrets(secrets: &[Secret]) -> Result<(), StoreError> {
    kit::check_secrets("cookie store", secrets)
}

// ---------------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------------

/// The stateless session store: the whole session in encrypted, chunked cookies.
/// See the [module documentation](self).
pub struct CookieStateStore {
    identifier: String,
    codec: CookieCodec,
    secure: bool,
    absolute: u64,
    inactivity: u64,
    cache: SessionCache,
    revocations: Arc<dyn RevocationList>,
}

impl std::fmt::Debug for CookieStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieStateStore")
            .field("identifier", &self.identifier)
            .field("secure", &self.secure)
            .field("absolute_duration", &self.absolute)
            .field("inactivity_duration", &self.inactivity)
            .finish_non_exhaustive()
    }
}

/// Builds a [`CookieStateStore`]; start with [`CookieStateStore::builder`].
#[derive(Clone)]
#[must_use]
pub struct CookieStateStoreBuilder {
    secrets: Vec<Secret>,
    identifier: String,
    secure: bool,
    absolute: Duration,
    inactivity: Duration,
    cache_capacity: usize,
    revocations: Arc<dyn RevocationList>,
}

impl CookieStateStore {
    /// A builder using the configuration's secrets ([`Config::secrets`]: the first
    /// encrypts, all decrypt).
    pub fn builder(config: &Config) -> CookieStateStoreBuilder {
        Self::builder_with_secrets(config.secrets().iter().map(|s| s.expose().to_owned()))
    }

    /// A builder with explicit secrets (each at least 32 bytes): the first encrypts, all
    /// decrypt.
    pub fn builder_with_secrets<S: Into<String>>(
        secrets: impl IntoIterator<Item = S>,
    ) -> CookieStateStoreBuilder {
        CookieStateStoreBuilder {
            secrets: secrets.into_iter().map(Secret::new).collect(),
            identifier: DEFAULT_SESSION_COOKIE.to_owned(),
            secure: true,
            absolute: DEFAULT_ABSOLUTE_DURATION,
            inactivity: DEFAULT_INACTIVITY_DURATION,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            revocations: Arc::new(MemoryRevocations::new()),
        }
    }

    /// A store with the defaults and the configuration's secrets.
    pub fn new(config: &Config) -> Result<Self, StoreError> {
        Self::builder(config).build()
    }

    /// The cookie name prefix (and HKDF salt), e.g. `_a0_session`.
    pub fn identifier(&self) -> &str {
        &self.identifier
    }

    /// Whether cookies are written with `Secure`.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    fn removal_attributes(&self) -> &'static str {
        cookie_attributes(self.secure)
    }

    /// When the session ends: the earlier of its inactivity and absolute limits.
    fn lifetime(&self) -> SessionLifetime {
        SessionLifetime {
            absolute: Duration::from_secs(self.absolute),
            inactivity: Duration::from_secs(self.inactivity),
        }
    }

    fn expires_at(&self, state: &StateData) -> u64 {
        self.lifetime().expires_at(state).as_secs()
    }

    fn clear(&self, options: &mut CookieOptions) {
        chunks::clear(options, &self.identifier, self.removal_attributes());
    }

    /// Decrypts and parses a reassembled cookie value (the cold path).
    fn decode(&self, value: &str) -> Option<StateData> {
        let json = self.codec.decrypt(value)?;
        StateData::from_json(&json).ok()
    }

    /// Encrypts `state` as written (times already stamped) and sets its cookies.
    /// Returns the session as written (after any eviction), shared with the cache.
    fn write(
        &self,
        state: StateData,
        options: &mut CookieOptions,
        now: u64,
    ) -> Result<Arc<StateData>, StoreError> {
        let expires_at = self.expires_at(&state);
        if expires_at <= now {
            // Past its absolute limit: there is nothing left to keep.
            self.clear(options);
            return Ok(Arc::new(state));
        }
        let budget = chunks::MAX_CHUNKS * chunks::CHUNK_LEN;
        let mut token = self.codec.encrypt(&state.to_json())?;
        let mut state = state;
        if token.len() > budget {
            // Over the budget: evict cached tokens (expired, then the soonest to expire) as the
            // core decides, never the refresh token, ID token or user.
            let fits = |s: &StateData| {
                self.codec
                    .encrypt(&s.to_json())
                    .is_ok_and(|t| t.len() <= budget)
            };
            let identity_bytes = token.len();
            state =
                session::fit_within(state, UnixTime::from_secs(now), fits).ok_or_else(|| {
                    StoreError::new(format!(
                        "session too large for cookies even without cached access tokens: \
                     {identity_bytes} bytes encrypted with them, at most {budget}; \
                     use a server-side session store"
                    ))
                })?;
            token = self.codec.encrypt(&state.to_json())?;
        }
        chunks::write(
            options,
            &self.identifier,
            &token,
            &cookie_attributes_max_age(self.secure, expires_at - now),
        );
        let decoded = Decoded::new(state);
        self.cache.insert(token, decoded.clone());
        Ok(decoded.state)
    }
}

impl std::fmt::Debug for CookieStateStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieStateStoreBuilder")
            .field("secrets", &self.secrets.len())
            .field("identifier", &self.identifier)
            .field("secure", &self.secure)
            .field("absolute", &self.absolute)
            .field("inactivity", &self.inactivity)
            .field("cache_capacity", &self.cache_capacity)
            .finish_non_exhaustive()
    }
}

impl CookieStateStoreBuilder {
    /// The cookie name prefix and HKDF salt (default [`DEFAULT_SESSION_COOKIE`]). Must be a
    /// valid cookie name of at most [`chunks::MAX_NAME_LEN`] bytes.
    pub fn identifier(mut self, identifier: impl Into<String>) -> Self {
        self.identifier = identifier.into();
        self
    }

    /// Whether cookies carry `Secure` (default `true`).
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Sets `Secure` from the application's base URL: off only for plain http on a loopback
    /// host ([`is_loopback_http`]), on otherwise.
    pub fn for_app_base_url(mut self, url: &str) -> Self {
        self.secure = !is_loopback_http(url);
        self
    }

    /// How long a session lasts from its creation at most (default 7 days).
    pub fn absolute_duration(mut self, duration: Duration) -> Self {
        self.absolute = duration;
        self
    }

    /// How long a session lasts without being used (default 3 days). Each use more than
    /// [`TOUCH_INTERVAL`] seconds after the last write extends it.
    pub fn inactivity_duration(mut self, duration: Duration) -> Self {
        self.inactivity = duration;
        self
    }

    /// Where ended sessions are recorded (default: a [`MemoryRevocations`] of this store's
    /// own). Share one list between instances — the Redis list, feature `redis` — so that a
    /// logout or back-channel logout received by one instance ends the session on all.
    pub fn revocations(mut self, list: impl RevocationList + 'static) -> Self {
        self.revocations = Arc::new(list);
        self
    }

    /// How many decoded sessions to cache (default [`DEFAULT_CACHE_CAPACITY`]; `0`
    /// disables the cache).
    pub fn cache_capacity(mut self, entries: usize) -> Self {
        self.cache_capacity = entries;
        self
    }

    /// Validates the settings, derives the keys and returns the store.
    ///
    /// Errors: no secret, a secret shorter than 32 bytes, an invalid identifier, or a zero
    /// duration.
    pub fn build(self) -> Result<CookieStateStore, StoreError> {
        check_secrets(&self.secrets)?;
        if !chunks::is_valid_name(&self.identifier) {
            return Err(StoreError::new(
                "cookie store: the identifier is not a valid cookie name",
            ));
        }
        if self.absolute.as_secs() == 0 || self.inactivity.as_secs() == 0 {
            return Err(StoreError::new(
                "cookie store: session durations must be at least one second",
            ));
        }
        Ok(CookieStateStore {
            codec: CookieCodec::new(
                self.secrets.iter().map(|s| s.expose().as_bytes()),
                &self.identifier,
            ),
            identifier: self.identifier,
            secure: self.secure,
            absolute: self.absolute.as_secs(),
            inactivity: self.inactivity.as_secs(),
            cache: SessionCache::new(self.cache_capacity),
            revocations: self.revocations,
        })
    }
}

impl StateStore for CookieStateStore {
    type Options = CookieOptions;

    /// The session in the request's cookies, or `None`. Invalid or expired cookies are
    /// cleared; a valid session last written more than [`TOUCH_INTERVAL`] seconds ago is
    /// rewritten with `last_active_at = now`.
    fn get(
        &self,
        options: &mut CookieOptions,
        at: UnixTime,
    ) -> Result<Option<Arc<StateData>>, StoreError> {
        let now = at.as_secs();
        let Some(mut state) = self.current(options, now)? else {
            return Ok(None);
        };
        if self.lifetime().needs_touch(&state, at) {
            let mut touched = StateData::clone(&state);
            touched.internal.last_active_at = Some(now);
            // Extending the rolling expiry is best effort: a session that no longer fits in
            // the cookie budget once stamped (one written by another SDK, right at the limit)
            // is still served as it is rather than failing every request.
            if let Ok(written) = self.write(touched, options, now) {
                state = written;
            }
        }
        Ok(Some(state))
    }

    /// Writes the session, stamping `internal.last_active_at = now` (and
    /// `internal.created_at = now` when it is 0). Errors when the encrypted session needs
    /// more than [`chunks::MAX_CHUNKS`] cookies.
    fn set(
        &self,
        state: &StateData,
        options: &mut CookieOptions,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.write(state.written_at(now), options, now.as_secs())
            .map(drop)
    }

    /// Ends the session: records it in the revocation list (so a copy of the cookie taken
    /// before, or a refresh in flight, cannot bring it back) and deletes every chunk of the
    /// session cookie.
    fn delete(&self, options: &mut CookieOptions, now: UnixTime) -> Result<(), StoreError> {
        let current = self.current(options, now.as_secs());
        // The browser's cookies go whatever happens; a revocation list that cannot be reached
        // is then reported (the session is not ended for copies of the cookie).
        self.clear(options);
        if let Some(state) = current? {
            let ended = revocation::for_logout(&state, &self.lifetime());
            self.revocations.revoke(&ended, now)?;
        }
        Ok(())
    }

    /// Ends the sessions a verified logout token names, in every browser: the token's `sid`
    /// (or, without one, its `sub` for sessions created until now) goes into the revocation
    /// list, and a cookie session matching it is no session from then on. With the default
    /// in-process list this holds for this instance; configure the Redis list
    /// ([`CookieStateStoreBuilder::revocations`]) for all of them.
    fn delete_by_logout_token(
        &self,
        claims: &LogoutTokenClaims,
        _options: &mut CookieOptions,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        if let Some(ended) = revocation::for_logout_token(claims, now, &self.lifetime()) {
            self.revocations.revoke(&ended, now)?;
        }
        Ok(())
    }

    /// Records the logout token in the revocation list when it keeps records every instance
    /// sees (the Redis list, `RedisRevocations`); the default list
    /// leaves it to the client's in-process record.
    fn record_logout_token_id(
        &self,
        key: &str,
        until: UnixTime,
        now: UnixTime,
    ) -> Result<LogoutTokenIdRecord, StoreError> {
        self.revocations.record_logout_token_id(key, until, now)
    }
}

impl CookieStateStore {
    /// The session the request's cookies carry, unexpired and not revoked, without touching
    /// it; invalid, expired and revoked cookies are cleared.
    fn current(
        &self,
        options: &mut CookieOptions,
        now: u64,
    ) -> Result<Option<Arc<StateData>>, StoreError> {
        let parts = match chunks::read_parts(options, &self.identifier) {
            Parts::Absent => return Ok(None),
            Parts::Invalid => {
                self.clear(options);
                return Ok(None);
            }
            Parts::Value(parts) => parts,
        };
        let decoded = match self.cache.get_parts(&parts) {
            Some(decoded) => {
                if self.expires_at(&decoded.state) <= now {
                    self.cache.remove(&parts.concat());
                    self.clear(options);
                    return Ok(None);
                }
                decoded
            }
            None => {
                // A value that is not UTF-8 is no base64url: no session.
                let value = String::from_utf8(parts.concat()).unwrap_or_default();
                match self.decode(&value) {
                    Some(state) if self.expires_at(&state) > now => {
                        let decoded = Decoded::new(state);
                        self.cache.insert(value, decoded.clone());
                        decoded
                    }
                    _ => {
                        self.clear(options);
                        return Ok(None);
                    }
                }
            }
        };
        let found = self.revocations.lookup(
            &decoded.revocation_keys,
            auth0_server_protocol::time::UnixTime::from_secs(now),
        )?;
        if revocation::is_revoked(&decoded.state, &found) {
            self.clear(options);
            return Ok(None);
        }
        Ok(Some(decoded.state))
    }
}

// ---------------------------------------------------------------------------------------------
// Transactions
// ---------------------------------------------------------------------------------------------

/// The login transaction store in encrypted cookies: one short-lived cookie per `state`
/// (cookie name and HKDF salt = the transaction key `_a0_tx.{state}`), so concurrent logins
/// in several tabs each keep their own.
///
/// ```
/// use auth0_server::protocol::transaction::{TransactionData, transaction_key};
/// use auth0_server::store::{CookieOptions, TransactionStore};
/// use auth0_server::store::cookie::CookieTransactionStore;
///
/// let store = CookieTransactionStore::builder_with_secrets(["a-secret-of-at-least-32-bytes-long!!"])
///     .build()?;
/// let key = transaction_key("xyzABC123");
/// let mut opts = CookieOptions::new();
/// let now = auth0_server::clock::Clock::system().now();
/// store.set(&key, &TransactionData { state: Some("xyzABC123".into()), ..Default::default() }, &mut opts, now)?;
/// let header = opts.set_cookie_headers()[0].to_str()?;
/// assert!(header.starts_with("_a0_tx.xyzABC123.0="));
/// assert!(header.ends_with("; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age=3600"));
/// assert_eq!(store.get(&key, &mut opts, now)?.unwrap().state.as_deref(), Some("xyzABC123"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct CookieTransactionStore {
    secrets: Vec<Secret>,
    secure: bool,
    max_age: u64,
}

impl std::fmt::Debug for CookieTransactionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieTransactionStore")
            .field("secure", &self.secure)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

/// Builds a [`CookieTransactionStore`]; start with [`CookieTransactionStore::builder`].
#[derive(Clone, Debug)]
#[must_use]
pub struct CookieTransactionStoreBuilder {
    secrets: Vec<Secret>,
    secure: bool,
    max_age: Duration,
}

impl CookieTransactionStore {
    /// A builder using the configuration's secrets (the first encrypts, all decrypt).
    pub fn builder(config: &Config) -> CookieTransactionStoreBuilder {
        Self::builder_with_secrets(config.secrets().iter().map(|s| s.expose().to_owned()))
    }

    /// A builder with explicit secrets (each at least 32 bytes).
    pub fn builder_with_secrets<S: Into<String>>(
        secrets: impl IntoIterator<Item = S>,
    ) -> CookieTransactionStoreBuilder {
        CookieTransactionStoreBuilder {
            secrets: secrets.into_iter().map(Secret::new).collect(),
            secure: true,
            max_age: Duration::from_secs(DEFAULT_TRANSACTION_MAX_AGE),
        }
    }

    /// A store with the defaults and the configuration's secrets.
    pub fn new(config: &Config) -> Result<Self, StoreError> {
        Self::builder(config).build()
    }

    /// Whether cookies are written with `Secure`.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// Keys for one transaction. Derived per call: a transaction is written once and read
    /// once per login, which is rare next to session reads.
    fn codec(&self, key: &str) -> CookieCodec {
        CookieCodec::new(self.secrets.iter().map(|s| s.expose().as_bytes()), key)
    }

    fn clear(&self, key: &str, options: &mut CookieOptions) {
        chunks::clear(options, key, cookie_attributes(self.secure));
    }
}

impl CookieTransactionStoreBuilder {
    /// Whether cookies carry `Secure` (default `true`).
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Sets `Secure` from the application's base URL: off only for plain http on a loopback
    /// host ([`is_loopback_http`]).
    pub fn for_app_base_url(mut self, url: &str) -> Self {
        self.secure = !is_loopback_http(url);
        self
    }

    /// How long a login may take (default [`DEFAULT_TRANSACTION_MAX_AGE`] seconds), counted
    /// from the transaction's `created_at`.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Validates the settings and returns the store. Errors: no secret, a secret shorter
    /// than 32 bytes, or a zero `max_age`.
    pub fn build(self) -> Result<CookieTransactionStore, StoreError> {
        check_secrets(&self.secrets)?;
        if self.max_age.as_secs() == 0 {
            return Err(StoreError::new(
                "cookie store: transaction max_age must be at least one second",
            ));
        }
        Ok(CookieTransactionStore {
            secrets: self.secrets,
            secure: self.secure,
            max_age: self.max_age.as_secs(),
        })
    }
}

impl CookieTransactionStore {
    /// Before a new login is stored: clears the oldest of the browser's other pending logins
    /// beyond [`MAX_PENDING_LOGINS`]` - 1` (the core decides which), so abandoned logins never
    /// grow the Cookie header past what servers accept.
    fn drop_oldest_pending(&self, key: &str, options: &mut CookieOptions) {
        let others: Vec<String> = options
            .cookie_names()
            .into_iter()
            .filter_map(|name| name.strip_suffix(".0"))
            .filter(|k| k.starts_with(TRANSACTION_KEY_PREFIX) && *k != key)
            .map(str::to_owned)
            .collect();
        if others.len() < MAX_PENDING_LOGINS {
            return;
        }
        let pending: Vec<(&str, Option<u64>)> = others
            .iter()
            .map(|k| (k.as_str(), self.created_at(k, options)))
            .collect();
        for k in pending_logins_to_drop(&pending) {
            self.clear(k, options);
        }
    }

    /// When the pending login under `key` was started, if its cookie can be read.
    fn created_at(&self, key: &str, options: &CookieOptions) -> Option<u64> {
        let Read::Value(value) = chunks::read(options, key) else {
            return None;
        };
        let json = self.codec(key).decrypt(&value)?;
        serde_json::from_slice::<TransactionData>(&json)
            .ok()
            .map(|tx| tx.created_at)
    }
}

impl TransactionStore for CookieTransactionStore {
    type Options = CookieOptions;

    /// The transaction under `key`, or `None` (also for an invalid key, or a transaction
    /// that is tampered, foreign or older than its max age — whose cookies are cleared).
    fn get(
        &self,
        key: &str,
        options: &mut CookieOptions,
        now: UnixTime,
    ) -> Result<Option<TransactionData>, StoreError> {
        if !chunks::is_valid_name(key) {
            return Ok(None);
        }
        let value = match chunks::read(options, key) {
            Read::Absent => return Ok(None),
            Read::Invalid => {
                self.clear(key, options);
                return Ok(None);
            }
            Read::Value(v) => v,
        };
        let now = now.as_secs();
        let tx = self
            .codec(key)
            .decrypt(&value)
            .and_then(|json| serde_json::from_slice::<TransactionData>(&json).ok())
            .filter(|tx| tx.created_at.saturating_add(self.max_age) > now);
        if tx.is_none() {
            self.clear(key, options);
        }
        Ok(tx)
    }

    /// Writes the transaction under `key` (`created_at` stamped with `now` when 0), with
    /// `Max-Age` = what is left of its lifetime. Errors for a key that is not a valid
    /// cookie name.
    fn set(
        &self,
        key: &str,
        transaction: &TransactionData,
        options: &mut CookieOptions,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        if !chunks::is_valid_name(key) {
            return Err(StoreError::new(
                "cookie transaction store: the transaction key is not a valid cookie name",
            ));
        }
        let tx = transaction.written_at(now);
        let now = now.as_secs();
        let expires_at = tx.created_at.saturating_add(self.max_age);
        if expires_at <= now {
            self.clear(key, options);
            return Ok(());
        }
        let json = serde_json::to_vec(&tx)
            .map_err(|e| StoreError::with_source("cannot serialise the transaction", e))?;
        let token = self.codec(key).encrypt(&json)?;
        if token.len() > chunks::MAX_CHUNKS * chunks::CHUNK_LEN {
            return Err(StoreError::new("transaction too large for cookies"));
        }
        let max_age = (expires_at - now).min(self.max_age);
        self.drop_oldest_pending(key, options);
        chunks::write(
            options,
            key,
            &token,
            &cookie_attributes_max_age(self.secure, max_age),
        );
        Ok(())
    }

    /// Deletes the transaction's cookies.
    fn delete(
        &self,
        key: &str,
        options: &mut CookieOptions,
        _now: UnixTime,
    ) -> Result<(), StoreError> {
        if chunks::is_valid_name(key) {
            self.clear(key, options);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
