//! A model of a shared session store (what Redis is to several instances): one map of
//! sessions by id, shared by every instance, with injected failures (errors on load and save,
//! writes that are acknowledged but lost) and an await point before and after each operation.
//!
//! It records what the invariants need: sessions deleted (logout, back-channel logout) — a
//! save that re-creates one breaks I2 — and which sessions a fault touched (I3 and I4 are
//! only promised without one).

use crate::exec::YieldNow;
use crate::world::{Violation, World, lock};
use auth0_server::clock::Clock;
use auth0_server::protocol::effect::LogoutTokenClaims;
use auth0_server::protocol::session::revocation::Revocation;
use auth0_server::protocol::session::{Merged, SessionUpdate, StateData, Updated};
use auth0_server::protocol::time::UnixTime;
use auth0_server::protocol::transaction::TransactionData;
use auth0_server::store::CookieStateStore;
use auth0_server::store::memory::MemoryStateStore;
use auth0_server::store::revocation::{MemoryRevocations, RevocationList};
use auth0_server::store::{
    AsyncStateStore, AsyncTransactionStore, CookieOptions, StateStore, StoreError,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// The store options of a simulated request: which session (the browser's cookie names it),
/// and, with the encrypted cookie store, the request's cookies and the `Set-Cookie` values
/// of its response.
#[derive(Clone, Debug, Default)]
pub struct SimOptions {
    /// The session, if the request carries one.
    pub session: Option<u32>,
    /// The request's cookies (cookie store only).
    pub cookies: Option<CookieOptions>,
}

/// A revocation list shared by every instance (what the Redis list is to the cookie store).
#[derive(Clone, Default)]
pub struct SharedRevocations(pub Arc<MemoryRevocations>);

impl RevocationList for SharedRevocations {
    fn revoke(&self, revocation: &Revocation, now: UnixTime) -> Result<(), StoreError> {
        self.0.revoke(revocation, now)
    }
    fn lookup(&self, keys: &[String], now: UnixTime) -> Result<Vec<Option<UnixTime>>, StoreError> {
        self.0.lookup(keys, now)
    }
}

/// Fault rates of the model store (per operation).
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreFaults {
    /// An operation fails with an error.
    pub error: f64,
    /// A save is acknowledged but not written.
    pub lost_write: f64,
}

/// Where the sessions are kept: a plain map (the model), or the SDK's own in-memory store
/// (its real logic), shared by every instance.
pub enum Sessions {
    /// A map by session number.
    Model(BTreeMap<u32, StateData>),
    /// The SDK's `MemoryStateStore`, with each session's id (the browser's cookie value).
    Memory {
        /// The store.
        store: Arc<MemoryStateStore>,
        /// Session number → session id.
        ids: BTreeMap<u32, String>,
        /// The simulation's clock (the checker reads the store at its time).
        clock: Clock,
    },
    /// The SDK's encrypted `CookieStateStore`: each session lives in its browser's cookie
    /// jar, which the simulation updates from the `Set-Cookie` values of every response that
    /// reaches the browser (a cancelled request's never does).
    Cookie {
        /// The store (the codec, the revocation list).
        store: Arc<CookieStateStore>,
        /// Session number → the browser's cookies.
        jars: BTreeMap<u32, BTreeMap<String, String>>,
        /// The simulation's clock.
        clock: Clock,
    },
}

/// Cookie options carrying a browser jar's cookies.
pub fn request_cookies(jar: &BTreeMap<String, String>) -> CookieOptions {
    let header = jar
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let mut headers = http::HeaderMap::new();
    match http::HeaderValue::from_str(&header) {
        Ok(value) if !header.is_empty() => {
            headers.insert(http::header::COOKIE, value);
        }
        _ => {}
    }
    CookieOptions::from_request_headers(&headers)
}

/// Applies a response's `Set-Cookie` values to a browser jar.
pub fn apply_set_cookies(jar: &mut BTreeMap<String, String>, set_cookies: &[http::HeaderValue]) {
    for value in set_cookies {
        let Ok(value) = value.to_str() else { continue };
        let (pair, attributes) = value.split_once(';').unwrap_or((value, ""));
        let Some((name, cookie)) = pair.split_once('=') else {
            continue;
        };
        if attributes.contains("Max-Age=0") {
            jar.remove(name.trim());
        } else {
            jar.insert(name.trim().to_owned(), cookie.trim().to_owned());
        }
    }
}

impl Sessions {
    fn cookies(store: &MemoryStateStore, id: Option<&String>) -> CookieOptions {
        let mut headers = http::HeaderMap::new();
        if let Some(value) =
            id.and_then(|id| http::HeaderValue::from_str(&format!("{}={id}", store.cookie())).ok())
        {
            headers.insert(http::header::COOKIE, value);
        }
        CookieOptions::from_request_headers(&headers)
    }

    /// The session, if it exists.
    pub fn get(&self, session: u32) -> Option<StateData> {
        match self {
            Sessions::Model(map) => map.get(&session).cloned(),
            Sessions::Cookie { store, jars, clock } => {
                let mut cookies = request_cookies(jars.get(&session)?);
                StateStore::get(&**store, &mut cookies, clock.now())
                    .ok()
                    .flatten()
                    .map(Arc::unwrap_or_clone)
            }
            Sessions::Memory { store, ids, clock } => {
                let id = ids.get(&session)?;
                StateStore::get(&**store, &mut Self::cookies(store, Some(id)), clock.now())
                    .ok()
                    .flatten()
                    .map(Arc::unwrap_or_clone)
            }
        }
    }

    /// Writes the session; returns whether it did not exist (it was created).
    pub fn put(&mut self, session: u32, state: &StateData) -> Result<bool, StoreError> {
        match self {
            Sessions::Model(map) => Ok(map.insert(session, state.clone()).is_none()),
            Sessions::Cookie { store, jars, clock } => {
                let jar = jars.entry(session).or_default();
                let created = jar.is_empty();
                let mut cookies = request_cookies(jar);
                StateStore::set(&**store, state, &mut cookies, clock.now())?;
                apply_set_cookies(jar, cookies.set_cookie_headers());
                Ok(created)
            }
            Sessions::Memory { store, ids, clock } => {
                let mut cookies = Self::cookies(store, ids.get(&session));
                StateStore::set(&**store, state, &mut cookies, clock.now())?;
                // A new id means the store created a session (and told the browser).
                let id = cookies.cookie(store.cookie()).map(str::to_owned);
                let created = id.is_some() && id.as_ref() != ids.get(&session);
                if let (true, Some(id)) = (created, id) {
                    ids.insert(session, id);
                }
                Ok(created)
            }
        }
    }

    /// Applies an update-only save atomically (under the caller's lock of the state).
    pub fn update(&mut self, session: u32, update: &SessionUpdate) -> Result<Updated, StoreError> {
        match self {
            Sessions::Cookie { .. } => {
                Err(StoreError::new("cookie sessions update in the request"))
            }
            Sessions::Model(map) => {
                let Some(current) = map.get(&session).cloned() else {
                    return Ok(Updated::Gone);
                };
                match update.apply(current) {
                    Merged::Updated(state) => {
                        map.insert(session, state);
                        Ok(Updated::Saved)
                    }
                    Merged::OtherSession => Ok(Updated::Gone),
                }
            }
            Sessions::Memory { store, ids, clock } => {
                let Some(id) = ids.get(&session) else {
                    return Ok(Updated::Gone);
                };
                StateStore::update(
                    &**store,
                    update,
                    &mut Self::cookies(store, Some(id)),
                    clock.now(),
                )
            }
        }
    }

    /// Deletes the session; returns whether it existed.
    pub fn remove(&mut self, session: u32) -> bool {
        match self {
            Sessions::Model(map) => map.remove(&session).is_some(),
            Sessions::Cookie { jars, .. } => jars.remove(&session).is_some(),
            Sessions::Memory { .. } => {
                let existed = self.get(session).is_some();
                if let Sessions::Memory { store, ids, clock } = self {
                    let _ = StateStore::delete(
                        &**store,
                        &mut Self::cookies(store, ids.get(&session)),
                        clock.now(),
                    );
                }
                existed
            }
        }
    }

    /// The sessions that exist.
    pub fn live(&self) -> Vec<u32> {
        match self {
            Sessions::Model(map) => map.keys().copied().collect(),
            Sessions::Memory { ids, .. } => ids
                .keys()
                .copied()
                .filter(|&s| self.get(s).is_some())
                .collect(),
            Sessions::Cookie { jars, .. } => jars
                .keys()
                .copied()
                .filter(|&s| self.get(s).is_some())
                .collect(),
        }
    }

    /// The encrypted cookie store, when the sessions live in cookies.
    pub fn cookie_store(&self) -> Option<Arc<CookieStateStore>> {
        match self {
            Sessions::Cookie { store, .. } => Some(store.clone()),
            _ => None,
        }
    }

    /// A browser's cookies (cookie store only).
    pub fn jar(&mut self, session: u32) -> Option<&mut BTreeMap<String, String>> {
        match self {
            Sessions::Cookie { jars, .. } => Some(jars.entry(session).or_default()),
            _ => None,
        }
    }

    /// Ends the sessions a logout token names; returns them.
    fn end(&mut self, claims: &LogoutTokenClaims) -> Vec<u32> {
        let before = self.live();
        match self {
            Sessions::Model(map) => {
                let sid = claims.sid.clone().unwrap_or_default();
                map.retain(|_, st| st.internal.sid != sid);
            }
            Sessions::Memory { store, clock, .. } => {
                let _ = StateStore::delete_by_logout_token(
                    &**store,
                    claims,
                    &mut CookieOptions::new(),
                    clock.now(),
                );
            }
            // Cookie sessions end in the request (the store records a revocation).
            Sessions::Cookie { .. } => {}
        }
        let after = self.live();
        before.into_iter().filter(|s| !after.contains(s)).collect()
    }
}

/// The store's state.
pub struct StoreState {
    /// The sessions.
    pub sessions: Sessions,
    /// Sessions deleted (never to come back).
    pub deleted: BTreeSet<u32>,
    /// Sessions a fault touched, with how many faults.
    pub faulted: BTreeMap<u32, u32>,
    /// Sessions whose lost write carried a refresh token the store did not have.
    pub lost_refresh_tokens: BTreeSet<u32>,
    /// Violations found at the store.
    pub violations: Vec<Violation>,
    /// Fault rates; zero in the final, fault-free phase.
    pub faults: StoreFaults,
    /// Saves performed.
    pub saves: u64,
    /// Saves begun (the SDK called `set`).
    pub saves_begun: u64,
    /// Faults injected.
    pub injected: u64,
    /// Whether `update` is atomic (applied under the store's lock, as the memory and Redis
    /// stores do) or the trait's default read-apply-write (two calls, with await points).
    pub atomic_update: bool,
    rng: ChaCha8Rng,
}

/// The model shared session store (clones share one map, as instances share one Redis).
#[derive(Clone)]
pub struct ModelStore {
    /// Its state.
    pub state: Arc<Mutex<StoreState>>,
    /// The world, told when a lost write took a rotated refresh token with it (an injected
    /// fault: a later reuse of the old token is then not the SDK's doing).
    world: Arc<Mutex<World>>,
}

impl ModelStore {
    /// An empty store whose fault decisions come from `seed`.
    pub fn new(
        seed: u64,
        faults: StoreFaults,
        world: Arc<Mutex<World>>,
        sessions: Sessions,
    ) -> Self {
        ModelStore {
            world,
            state: Arc::new(Mutex::new(StoreState {
                sessions,
                deleted: BTreeSet::new(),
                faulted: BTreeMap::new(),
                lost_refresh_tokens: BTreeSet::new(),
                violations: Vec::new(),
                faults,
                saves: 0,
                saves_begun: 0,
                injected: 0,
                atomic_update: true,
                rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5707e),
            })),
        }
    }

    /// The encrypted cookie store, when the sessions live in cookies.
    fn cookie_store(&self) -> Option<Arc<CookieStateStore>> {
        lock(&self.state).sessions.cookie_store()
    }

    /// Whether to fail this operation on session `id`, and whether to yield after it.
    fn roll(&self, id: Option<u32>, rate: f64) -> (bool, bool) {
        let mut s = lock(&self.state);
        let fail = rate > 0.0 && s.rng.random_bool(rate);
        if let (true, Some(id)) = (fail, id) {
            *s.faulted.entry(id).or_default() += 1;
            s.injected += 1;
        }
        (fail, s.rng.random_bool(0.5))
    }
}

impl AsyncStateStore for ModelStore {
    type Options = SimOptions;

    async fn get(
        &self,
        options: &mut SimOptions,
        now: UnixTime,
    ) -> Result<Option<Arc<StateData>>, StoreError> {
        YieldNow::new().await;
        let Some(id) = options.session else {
            return Ok(None);
        };
        let rate = lock(&self.state).faults.error;
        let (fail, _) = self.roll(Some(id), rate);
        if fail {
            return Err(StoreError::new("injected: load failed"));
        }
        if let Some(cookie) = self.cookie_store() {
            return StateStore::get(
                &*cookie,
                options.cookies.get_or_insert_with(CookieOptions::new),
                now,
            );
        }
        Ok(lock(&self.state).sessions.get(id).map(Arc::new))
    }

    async fn set(
        &self,
        state: &StateData,
        options: &mut SimOptions,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        lock(&self.state).saves_begun += 1;
        YieldNow::new().await;
        let Some(id) = options.session else {
            return Err(StoreError::new("no session id"));
        };
        let faults = lock(&self.state).faults;
        let (fail, yield_after) = self.roll(Some(id), faults.error);
        if fail {
            return Err(StoreError::new("injected: save failed"));
        }
        if let Some(cookie) = self.cookie_store() {
            lock(&self.state).saves += 1;
            return StateStore::set(
                &*cookie,
                state,
                options.cookies.get_or_insert_with(CookieOptions::new),
                now,
            );
        }
        let (lost, _) = self.roll(Some(id), faults.lost_write);
        let mut lost_token = None;
        {
            let mut s = lock(&self.state);
            s.saves += 1;
            if lost {
                let stored = s.sessions.get(id).and_then(|x| x.refresh_token.clone());
                let written = state.refresh_token.as_ref().map(|t| t.expose().to_owned());
                if stored.map(|t| t.expose().to_owned()) != written {
                    s.lost_refresh_tokens.insert(id);
                    lost_token = written;
                }
            } else {
                let created = s.sessions.put(id, state)?;
                if created && s.deleted.contains(&id) {
                    s.violations.push(Violation {
                        invariant: "I2",
                        what: format!("session {id} was re-created by a save after it was deleted"),
                    });
                }
            }
        }
        if let Some(token) = lost_token {
            let mut w = lock(&self.world);
            if let Some(family) = w.auth.family_of(&token) {
                w.auth.families[family].lost_by_fault += 1;
            }
        }
        if yield_after {
            YieldNow::new().await;
        }
        Ok(())
    }

    async fn update(
        &self,
        update: &SessionUpdate,
        options: &mut SimOptions,
        now: UnixTime,
    ) -> Result<Updated, StoreError> {
        if !lock(&self.state).atomic_update {
            // The trait's default: read, apply, write (two store calls, each an await point).
            let Some(current) = self.get(options, now).await? else {
                return Ok(Updated::Gone);
            };
            return match update.apply(Arc::unwrap_or_clone(current)) {
                Merged::Updated(state) => {
                    self.set(&state, options, now).await?;
                    Ok(Updated::Saved)
                }
                Merged::OtherSession => Ok(Updated::Gone),
            };
        }
        lock(&self.state).saves_begun += 1;
        YieldNow::new().await;
        let Some(id) = options.session else {
            return Ok(Updated::Gone);
        };
        let faults = lock(&self.state).faults;
        let (fail, yield_after) = self.roll(Some(id), faults.error);
        if fail {
            return Err(StoreError::new("injected: update failed"));
        }
        if let Some(cookie) = self.cookie_store() {
            lock(&self.state).saves += 1;
            return StateStore::update(
                &*cookie,
                update,
                options.cookies.get_or_insert_with(CookieOptions::new),
                now,
            );
        }
        let (lost, _) = self.roll(Some(id), faults.lost_write);
        let mut lost_token = None;
        let updated = {
            let mut s = lock(&self.state);
            s.saves += 1;
            if lost {
                // Acknowledged, not written: what the write would have stored is lost.
                let current = s.sessions.get(id);
                let stored = current.as_ref().and_then(|c| c.refresh_token.clone());
                let written = match current.map(|c| update.apply(c)) {
                    Some(Merged::Updated(st)) => st.refresh_token,
                    _ => None,
                };
                let (stored, written) = (
                    stored.map(|t| t.expose().to_owned()),
                    written.map(|t| t.expose().to_owned()),
                );
                if written.is_some() && stored != written {
                    s.lost_refresh_tokens.insert(id);
                    lost_token = written;
                }
                if s.sessions.get(id).is_some() {
                    Updated::Saved
                } else {
                    Updated::Gone
                }
            } else {
                s.sessions.update(id, update)?
            }
        };
        if let Some(token) = lost_token {
            let mut w = lock(&self.world);
            if let Some(family) = w.auth.family_of(&token) {
                w.auth.families[family].lost_by_fault += 1;
            }
        }
        if yield_after {
            YieldNow::new().await;
        }
        Ok(updated)
    }

    async fn delete(&self, options: &mut SimOptions, now: UnixTime) -> Result<(), StoreError> {
        YieldNow::new().await;
        let Some(id) = options.session else {
            return Ok(());
        };
        let rate = lock(&self.state).faults.error;
        let (fail, yield_after) = self.roll(Some(id), rate);
        if fail {
            return Err(StoreError::new("injected: delete failed"));
        }
        if let Some(cookie) = self.cookie_store() {
            StateStore::delete(
                &*cookie,
                options.cookies.get_or_insert_with(CookieOptions::new),
                now,
            )?;
            lock(&self.state).deleted.insert(id);
            return Ok(());
        }
        {
            let mut s = lock(&self.state);
            if s.sessions.remove(id) {
                s.deleted.insert(id);
            }
        }
        if yield_after {
            YieldNow::new().await;
        }
        Ok(())
    }

    async fn delete_by_logout_token(
        &self,
        claims: &LogoutTokenClaims,
        options: &mut SimOptions,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        YieldNow::new().await;
        let Some(sid) = &claims.sid else {
            return Ok(());
        };
        if let Some(cookie) = self.cookie_store() {
            StateStore::delete_by_logout_token(
                &*cookie,
                claims,
                options.cookies.get_or_insert_with(CookieOptions::new),
                now,
            )?;
            if let Some(id) = sid.strip_prefix("sid-").and_then(|n| n.parse().ok()) {
                lock(&self.state).deleted.insert(id);
            }
            return Ok(());
        }
        let mut s = lock(&self.state);
        for id in s.sessions.end(claims) {
            s.deleted.insert(id);
        }
        Ok(())
    }
}

/// A transaction store for the simulation, which starts no logins: always empty.
pub struct NoTransactions;

impl AsyncTransactionStore for NoTransactions {
    type Options = SimOptions;

    async fn get(
        &self,
        _key: &str,
        _options: &mut SimOptions,
        _now: UnixTime,
    ) -> Result<Option<TransactionData>, StoreError> {
        Ok(None)
    }

    async fn set(
        &self,
        _key: &str,
        _transaction: &TransactionData,
        _options: &mut SimOptions,
        _now: UnixTime,
    ) -> Result<(), StoreError> {
        Err(StoreError::new("the simulation starts no logins"))
    }

    async fn delete(
        &self,
        _key: &str,
        _options: &mut SimOptions,
        _now: UnixTime,
    ) -> Result<(), StoreError> {
        Ok(())
    }
}
