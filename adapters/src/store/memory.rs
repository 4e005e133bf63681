//! In-memory stores: sessions live in this process, keyed by a random session
//! id that the browser holds in a cookie. Suited to a single-process server and to tests; the
//! sessions are lost on restart.
//!
//! The session id is 256 random bits (base64url), in the cookie `__a0_sid` by default, with
//! `HttpOnly; SameSite=Lax; Path=/` and `Secure` unless turned off for plain-http development.
//! A cookie naming an unknown id is never adopted: saving a session then creates a new id
//! (no session fixation).
//!
//! Sessions expire like cookie sessions ([`SessionLifetime`]: 7 days absolute, 3 days of
//! inactivity by default), checked on every read, and the store is bounded: past its
//! capacity, expired sessions are dropped first, then the least recently active. Login
//! transactions expire after an hour, and each is bound to the browser that started the
//! login by a random value in a cookie named after the transaction key (`_a0_tx.{state}`):
//! a callback URL opened in another browser finds no transaction (login CSRF).
//!
//! ```
//! use auth0_server::store::{CookieOptions, StateStore};
//! use auth0_server::store::memory::MemoryStateStore;
//! use auth0_server::protocol::session::StateData;
//!
//! let store = MemoryStateStore::new();
//! let mut first = CookieOptions::new();
//! store.set(&StateData::default(), &mut first)?;
//! let set_cookie = first.set_cookie_headers()[0].to_str()?.to_owned();
//! assert!(set_cookie.starts_with("__a0_sid=") && set_cookie.contains("HttpOnly"));
//!
//! // The browser sends the cookie back.
//! let cookie = set_cookie.split(';').next().unwrap_or_default();
//! let mut headers = http::HeaderMap::new();
//! headers.insert(http::header::COOKIE, cookie.parse()?);
//! let mut next = CookieOptions::from_request_headers(&headers);
//! assert!(store.get(&mut next)?.is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::clock::Clock;
use crate::store::kit::{
    constant_time_eq, cookie_attributes, cookie_attributes_max_age, random_token,
};
use crate::store::{CookieOptions, StateStore, StoreError, TransactionStore};
use auth0_server_protocol::effect::LogoutTokenClaims;
use auth0_server_protocol::session::{SessionLifetime, StateData};
use auth0_server_protocol::transaction::TransactionData;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Default most sessions held at once.
pub const DEFAULT_SESSION_CAPACITY: usize = 100_000;
/// Default most login transactions held at once.
pub const DEFAULT_TRANSACTION_CAPACITY: usize = 10_000;
/// How long a login transaction lives, seconds.
pub const TRANSACTION_LIFETIME: u64 =
    auth0_server_protocol::transaction::TRANSACTION_MAX_AGE.as_secs();

/// The default name of the cookie that holds a server-side session's id (the memory and
/// Redis stores). Not to be confused with the encrypted cookie store's
/// [`DEFAULT_SESSION_COOKIE`](super::cookie::DEFAULT_SESSION_COOKIE), which holds the session
/// itself.
pub const DEFAULT_SESSION_ID_COOKIE: &str = "__a0_sid";

/// Bytes of randomness in a session id (256 bits).
const SESSION_ID_BYTES: usize = 32;

/// Bytes of randomness binding a login transaction to its browser (128 bits).
const BINDING_BYTES: usize = 16;

/// Longest cookie value looked up (a longer one cannot be an id this store issued).
const MAX_ID_LEN: usize = 64;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A state store keeping sessions in memory, keyed by a session id held in a cookie.
pub struct MemoryStateStore {
    sessions: Mutex<HashMap<String, StateData>>,
    cookie_name: String,
    secure: bool,
    clock: Clock,
    lifetime: SessionLifetime,
    capacity: usize,
}

impl Default for MemoryStateStore {
    fn default() -> Self {
        MemoryStateStore::new()
    }
}

impl std::fmt::Debug for MemoryStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStateStore")
            .field("sessions", &self.len())
            .field("cookie_name", &self.cookie_name)
            .field("secure", &self.secure)
            .field("lifetime", &self.lifetime)
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl MemoryStateStore {
    /// An empty store with the cookie `__a0_sid`, marked `Secure`.
    pub fn new() -> Self {
        MemoryStateStore {
            sessions: Mutex::new(HashMap::new()),
            cookie_name: DEFAULT_SESSION_ID_COOKIE.to_owned(),
            secure: true,
            clock: Clock::system(),
            lifetime: SessionLifetime::default(),
            capacity: DEFAULT_SESSION_CAPACITY,
        }
    }

    /// Uses another clock (tests, demos).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The absolute session lifetime (default 7 days from creation).
    pub fn absolute_duration(mut self, duration: Duration) -> Self {
        self.lifetime.absolute = duration;
        self
    }

    /// The inactivity limit (default 3 days from the last use).
    pub fn inactivity_duration(mut self, duration: Duration) -> Self {
        self.lifetime.inactivity = duration;
        self
    }

    /// The most sessions held at once (default 100 000, at least 1).
    pub fn capacity(mut self, sessions: usize) -> Self {
        self.capacity = sessions.max(1);
        self
    }

    /// Uses another cookie name.
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = name.into();
        self
    }

    /// Whether the cookie is marked `Secure` (default `true`; turn off only for plain-http
    /// development on localhost).
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// How many sessions are stored.
    pub fn len(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// Whether no session is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores a session under a new id and returns the id (for tests and imports). Send the
    /// id to the browser in the cookie [`MemoryStateStore::cookie`] names.
    pub fn insert(&self, state: StateData) -> Result<String, StoreError> {
        let id = new_id()?;
        self.put(id.clone(), self.stamped(&state));
        Ok(id)
    }

    /// `state` with `created_at` (when 0) and `last_active_at` set to now.
    fn stamped(&self, state: &StateData) -> StateData {
        let now = self.clock.now().as_secs();
        let mut state = state.clone();
        if state.internal.created_at == 0 {
            state.internal.created_at = now;
        }
        state.internal.last_active_at = Some(now);
        state
    }

    /// Inserts, keeping the store within its capacity: expired sessions go first, then the
    /// least recently active.
    fn put(&self, id: String, state: StateData) {
        let now = self.clock.now().as_secs();
        let mut sessions = lock(&self.sessions);
        if !sessions.contains_key(&id) && sessions.len() >= self.capacity {
            sessions.retain(|_, s| {
                self.lifetime
                    .is_live(s, auth0_server_protocol::time::UnixTime::from_secs(now))
            });
            while sessions.len() >= self.capacity {
                let oldest = sessions
                    .iter()
                    .min_by_key(|(_, s)| s.internal.last_active_at.unwrap_or(s.internal.created_at))
                    .map(|(k, _)| k.clone());
                match oldest {
                    Some(k) => sessions.remove(&k),
                    None => break,
                };
            }
        }
        sessions.insert(id, state);
    }

    /// The name of the session-id cookie.
    pub fn cookie(&self) -> &str {
        &self.cookie_name
    }

    fn attributes(&self) -> &'static str {
        cookie_attributes(self.secure)
    }

    fn id<'a>(&self, options: &'a CookieOptions) -> Option<&'a str> {
        options
            .cookie(&self.cookie_name)
            .filter(|id| !id.is_empty() && id.len() <= MAX_ID_LEN)
    }
}

fn new_id() -> Result<String, StoreError> {
    random_token(SESSION_ID_BYTES)
}

/// Whether a session is one a logout token ends: by `sid` when the token has one, else by
/// `sub`; the session's issuer (when recorded) must be the token's.
fn matches_logout(state: &StateData, claims: &LogoutTokenClaims) -> bool {
    let same_issuer = |strict: bool| match state.iss() {
        Some(iss) => iss == claims.iss,
        None => !strict,
    };
    match (&claims.sid, &claims.sub) {
        (Some(sid), _) => !sid.is_empty() && state.internal.sid == *sid && same_issuer(false),
        (None, Some(sub)) => state.sub() == Some(sub.as_str()) && same_issuer(true),
        (None, None) => false,
    }
}

impl StateStore for MemoryStateStore {
    type Options = CookieOptions;

    /// The session of the request's id cookie. A session past its lifetime is removed and
    /// its cookie cleared; a session last used more than a minute ago is stamped active.
    fn get(&self, options: &mut CookieOptions) -> Result<Option<StateData>, StoreError> {
        let Some(id) = self.id(options).map(str::to_owned) else {
            return Ok(None);
        };
        let now = self.clock.now().as_secs();
        let mut sessions = lock(&self.sessions);
        let Some(state) = sessions.get_mut(&id) else {
            return Ok(None);
        };
        if !self
            .lifetime
            .is_live(state, auth0_server_protocol::time::UnixTime::from_secs(now))
        {
            sessions.remove(&id);
            drop(sessions);
            options.remove_cookie(&self.cookie_name, self.attributes());
            return Ok(None);
        }
        if self
            .lifetime
            .needs_touch(state, auth0_server_protocol::time::UnixTime::from_secs(now))
        {
            state.internal.last_active_at = Some(now);
        }
        Ok(Some(state.clone()))
    }

    fn set(&self, state: &StateData, options: &mut CookieOptions) -> Result<(), StoreError> {
        let state = self.stamped(state);
        if let Some(id) = self.id(options) {
            if let Some(slot) = lock(&self.sessions).get_mut(id) {
                *slot = state;
                return Ok(());
            }
        }
        let id = new_id()?;
        self.put(id.clone(), state);
        options.set_cookie(&self.cookie_name, &id, self.attributes());
        Ok(())
    }

    fn delete(&self, options: &mut CookieOptions) -> Result<(), StoreError> {
        if let Some(id) = self.id(options).map(str::to_owned) {
            lock(&self.sessions).remove(&id);
        }
        if options.cookie(&self.cookie_name).is_some() {
            options.remove_cookie(&self.cookie_name, self.attributes());
        }
        Ok(())
    }

    fn delete_by_logout_token(
        &self,
        claims: &LogoutTokenClaims,
        _options: &mut CookieOptions,
    ) -> Result<(), StoreError> {
        lock(&self.sessions).retain(|_, s| !matches_logout(s, claims));
        Ok(())
    }
}

/// A transaction store keeping in-flight logins in memory, keyed by the transaction key and
/// bound to the browser that started the login: `set` writes a cookie named after the key
/// (`HttpOnly; Secure; SameSite=Lax; Path=/`) with a random value, and `get` returns the
/// transaction only to a request carrying that value.
/// A transaction lives [`TRANSACTION_LIFETIME`] seconds; past [`DEFAULT_TRANSACTION_CAPACITY`]
/// the expired ones, then the oldest, are dropped.
pub struct MemoryTransactionStore {
    /// Transaction key → (binding cookie value, transaction).
    transactions: Mutex<HashMap<String, (String, TransactionData)>>,
    clock: Clock,
    secure: bool,
}

impl Default for MemoryTransactionStore {
    fn default() -> Self {
        MemoryTransactionStore {
            transactions: Mutex::default(),
            clock: Clock::default(),
            secure: true,
        }
    }
}

impl std::fmt::Debug for MemoryTransactionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTransactionStore")
            .field("transactions", &lock(&self.transactions).len())
            .finish()
    }
}

impl MemoryTransactionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses another clock (tests, demos).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Whether the binding cookie is marked `Secure` (default `true`; turn off only for
    /// plain-http development on localhost).
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    fn is_live(tx: &TransactionData, now: u64) -> bool {
        tx.created_at.saturating_add(TRANSACTION_LIFETIME) > now
    }

    fn attributes(&self) -> &'static str {
        cookie_attributes(self.secure)
    }
}

impl TransactionStore for MemoryTransactionStore {
    type Options = CookieOptions;

    /// The transaction under `key` if this browser started it (its binding cookie matches)
    /// and it is not older than [`TRANSACTION_LIFETIME`], else `None`.
    fn get(
        &self,
        key: &str,
        options: &mut CookieOptions,
    ) -> Result<Option<TransactionData>, StoreError> {
        let Some(cookie) = options.cookie(key) else {
            return Ok(None);
        };
        let now = self.clock.now().as_secs();
        let mut transactions = lock(&self.transactions);
        match transactions.get(key) {
            Some((binding, tx)) if Self::is_live(tx, now) => {
                Ok(constant_time_eq(binding, cookie).then(|| tx.clone()))
            }
            Some(_) => {
                transactions.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Stores the transaction and sets its binding cookie. Errors for a key that is not a
    /// valid cookie name.
    fn set(
        &self,
        key: &str,
        transaction: &TransactionData,
        options: &mut CookieOptions,
    ) -> Result<(), StoreError> {
        if !crate::store::cookie::chunks::is_valid_name(key) {
            return Err(StoreError::new(
                "memory transaction store: the transaction key is not a valid cookie name",
            ));
        }
        let binding = random_token(BINDING_BYTES)?;
        let now = self.clock.now().as_secs();
        let mut tx = transaction.clone();
        if tx.created_at == 0 {
            tx.created_at = now;
        }
        let mut transactions = lock(&self.transactions);
        if transactions.len() >= DEFAULT_TRANSACTION_CAPACITY {
            transactions.retain(|_, (_, t)| Self::is_live(t, now));
            while transactions.len() >= DEFAULT_TRANSACTION_CAPACITY {
                let oldest = transactions
                    .iter()
                    .min_by_key(|(_, (_, t))| t.created_at)
                    .map(|(k, _)| k.clone());
                match oldest {
                    Some(k) => transactions.remove(&k),
                    None => break,
                };
            }
        }
        let max_age = tx
            .created_at
            .saturating_add(TRANSACTION_LIFETIME)
            .saturating_sub(now)
            .min(TRANSACTION_LIFETIME);
        transactions.insert(key.to_owned(), (binding.clone(), tx));
        drop(transactions);
        options.set_cookie(
            key,
            &binding,
            &cookie_attributes_max_age(self.secure, max_age),
        );
        Ok(())
    }

    /// Deletes the transaction and clears its binding cookie.
    fn delete(&self, key: &str, options: &mut CookieOptions) -> Result<(), StoreError> {
        lock(&self.transactions).remove(key);
        if options.cookie(key).is_some() {
            options.remove_cookie(key, self.attributes());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    fn session(sub: &str, sid: &str) -> StateData {
        let mut s = StateData::default();
        let serde_json::Value::Object(user) = json!({"sub": sub, "iss": "https://t/"}) else {
            unreachable!()
        };
        s.user = Some(user);
        s.internal.sid = sid.into();
        s
    }

    fn options_for(store: &MemoryStateStore, id: &str) -> CookieOptions {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::COOKIE,
            format!("{}={id}", store.cookie()).parse().unwrap(),
        );
        CookieOptions::from_request_headers(&h)
    }

    #[test]
    fn set_creates_an_id_cookie_and_get_reads_it() {
        let store = MemoryStateStore::new();
        let mut o = CookieOptions::new();
        assert_eq!(store.get(&mut o).unwrap(), None);
        store.set(&session("a", "s1"), &mut o).unwrap();
        let header = o.set_cookie_headers()[0].to_str().unwrap().to_owned();
        // The attributes every SDK cookie carries (one order for every store now).
        assert!(
            header.contains("HttpOnly; Secure; SameSite=Lax; Path=/"),
            "{header}"
        );
        let id = o.cookie(store.cookie()).unwrap().to_owned();
        assert_eq!(URL_SAFE_NO_PAD.decode(&id).unwrap().len(), 32);
        let mut next = options_for(&store, &id);
        let got = store.get(&mut next).unwrap().unwrap();
        assert_eq!((got.sub(), got.internal.sid.as_str()), (Some("a"), "s1"));
        assert!(got.internal.created_at > 0, "stamped on write");
        // Updating keeps the id and writes no new cookie.
        store.set(&session("a", "s2"), &mut next).unwrap();
        assert!(next.set_cookie_headers().is_empty());
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn unknown_ids_are_not_adopted() {
        let store = MemoryStateStore::new().secure(false);
        let mut o = options_for(&store, "attacker-chosen");
        store.set(&session("a", "s"), &mut o).unwrap();
        assert_ne!(o.cookie(store.cookie()), Some("attacker-chosen"));
        assert!(
            !o.set_cookie_headers()[0]
                .to_str()
                .unwrap()
                .contains("Secure")
        );
    }

    #[test]
    fn delete_removes_the_session_and_clears_the_cookie() {
        let store = MemoryStateStore::new();
        let id = store.insert(session("a", "s")).unwrap();
        let mut o = options_for(&store, &id);
        store.delete(&mut o).unwrap();
        assert!(store.is_empty());
        assert!(
            o.set_cookie_headers()[0]
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
        );
    }

    #[test]
    fn logout_token_matches_sid_first_then_sub_of_the_same_issuer() {
        let store = MemoryStateStore::new();
        store.insert(session("alice", "s1")).unwrap();
        store.insert(session("alice", "s2")).unwrap();
        store.insert(session("bob", "s3")).unwrap();
        let mut o = CookieOptions::new();
        let claims = |sub: Option<&str>, sid: Option<&str>, iss: &str| LogoutTokenClaims {
            iss: iss.into(),
            sub: sub.map(Into::into),
            sid: sid.map(Into::into),
        };
        // sid and sub: only the sid's session ends.
        store
            .delete_by_logout_token(&claims(Some("alice"), Some("s1"), "https://t/"), &mut o)
            .unwrap();
        assert_eq!(store.len(), 2);
        // sub of another issuer: nothing.
        store
            .delete_by_logout_token(&claims(Some("alice"), None, "https://evil/"), &mut o)
            .unwrap();
        assert_eq!(store.len(), 2);
        store
            .delete_by_logout_token(&claims(Some("alice"), None, "https://t/"), &mut o)
            .unwrap();
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn sessions_expire_by_inactivity_and_absolute_lifetime_and_are_cleared() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU64, Ordering};
        let now = Arc::new(AtomicU64::new(1_000_000));
        let clock = {
            let now = now.clone();
            Clock::from_fn(move || now.load(Ordering::SeqCst))
        };
        let store = MemoryStateStore::new()
            .clock(clock)
            .inactivity_duration(Duration::from_secs(100))
            .absolute_duration(Duration::from_secs(250));
        let id = store.insert(session("a", "s")).unwrap();
        // Used every 90 s: the rolling inactivity limit keeps moving...
        for _ in 0..2 {
            now.fetch_add(90, Ordering::SeqCst);
            assert!(store.get(&mut options_for(&store, &id)).unwrap().is_some());
        }
        // ...until the absolute limit (250 s after creation).
        now.fetch_add(71, Ordering::SeqCst);
        let mut o = options_for(&store, &id);
        assert_eq!(store.get(&mut o).unwrap(), None);
        assert!(
            o.set_cookie_headers()[0]
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
        );
        assert!(store.is_empty());
        // Inactivity alone: 101 s without use.
        let id = store.insert(session("b", "s")).unwrap();
        now.fetch_add(101, Ordering::SeqCst);
        assert_eq!(store.get(&mut options_for(&store, &id)).unwrap(), None);
    }

    #[test]
    fn the_store_is_bounded_and_evicts_the_least_recently_active() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU64, Ordering};
        let now = Arc::new(AtomicU64::new(1_000_000));
        let clock = {
            let now = now.clone();
            Clock::from_fn(move || now.load(Ordering::SeqCst))
        };
        let store = MemoryStateStore::new().clock(clock).capacity(2);
        let first = store.insert(session("a", "1")).unwrap();
        now.fetch_add(1, Ordering::SeqCst);
        let second = store.insert(session("b", "2")).unwrap();
        now.fetch_add(1, Ordering::SeqCst);
        let third = store.insert(session("c", "3")).unwrap();
        assert_eq!(store.len(), 2);
        assert_eq!(store.get(&mut options_for(&store, &first)).unwrap(), None);
        assert!(
            store
                .get(&mut options_for(&store, &second))
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .get(&mut options_for(&store, &third))
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn transactions_expire_after_an_hour() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU64, Ordering};
        let now = Arc::new(AtomicU64::new(1_000_000));
        let clock = {
            let now = now.clone();
            Clock::from_fn(move || now.load(Ordering::SeqCst))
        };
        let store = MemoryTransactionStore::new().clock(clock);
        let mut o = CookieOptions::new();
        store
            .set("_a0_tx.s", &TransactionData::default(), &mut o)
            .unwrap();
        now.fetch_add(TRANSACTION_LIFETIME - 1, Ordering::SeqCst);
        assert!(store.get("_a0_tx.s", &mut o).unwrap().is_some());
        now.fetch_add(1, Ordering::SeqCst);
        assert!(store.get("_a0_tx.s", &mut o).unwrap().is_none());
    }
}
