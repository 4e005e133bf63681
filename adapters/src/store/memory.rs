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
//! capacity, a session past its absolute lifetime is dropped first, else the least recently
//! active (the first to expire by inactivity). Every operation costs the same whatever the
//! number of sessions, and requests on different sessions rarely share a lock. Login
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
//! // The client reads its clock and hands `now` to every store call.
//! let now = auth0_server::clock::Clock::system().now();
//! let mut first = CookieOptions::new();
//! store.set(&StateData::default(), &mut first, now)?;
//! let set_cookie = first.set_cookie_headers()[0].to_str()?.to_owned();
//! assert!(set_cookie.starts_with("__a0_sid=") && set_cookie.contains("HttpOnly"));
//!
//! // The browser sends the cookie back.
//! let cookie = set_cookie.split(';').next().unwrap_or_default();
//! let mut headers = http::HeaderMap::new();
//! headers.insert(http::header::COOKIE, cookie.parse()?);
//! let mut next = CookieOptions::from_request_headers(&headers);
//! assert!(store.get(&mut next, now)?.is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::store::kit::{
    constant_time_eq, cookie_attributes, cookie_attributes_max_age, random_token,
};
use crate::store::{CookieOptions, StateStore, StoreError, TransactionStore};
use auth0_server_protocol::effect::LogoutTokenClaims;
use auth0_server_protocol::session::{Merged, SessionLifetime, SessionUpdate, StateData, Updated};
use auth0_server_protocol::time::UnixTime;
use auth0_server_protocol::transaction::TransactionData;
use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
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

/// Number of independently locked parts of a [`MemoryStateStore`]. Requests on different
/// sessions almost never wait for each other; a save at capacity visits every shard once to
/// find the globally oldest session, a cost that does not grow with the number of sessions.
const SHARDS: usize = 32;

/// "No slot" in the intrusive recency list of a [`Shard`].
const NIL: usize = usize::MAX;

/// One stored session and its place in its shard's recency list.
struct Slot {
    id: Arc<str>,
    /// Shared with the requests that read it: a read copies nothing.
    state: Arc<StateData>,
    /// When the session was last stamped active, as a store-wide sequence number: a lower
    /// stamp is a less recently active session, in every shard.
    stamp: u64,
    /// End of the absolute lifetime (seconds), the key of [`Shard::deadlines`].
    deadline: u64,
    /// Neighbours in the recency list: `older` towards [`Shard::oldest`].
    older: usize,
    newer: usize,
}

/// The key that back-channel logout by `sub` looks sessions up with: the user's issuer and
/// subject (a logout token ends sessions by `sub` only for its own issuer).
type SubKey = (String, String);

/// A part of the session map with its own lock. Every operation is O(1) in the number of
/// sessions, but for the absolute-lifetime order, a B-tree (O(log n), on writes only):
/// - `ids` finds a session by id; `slots` holds them, with freed slots reused;
/// - a doubly linked list through the slots orders them by last activity, so the least
///   recently active is found, moved and removed without a scan;
/// - `deadlines` orders them by the end of their absolute lifetime, so an expired session is
///   found without a scan;
/// - `by_sid` and `by_sub` find the sessions a back-channel logout token ends.
#[derive(Default)]
struct Shard {
    ids: HashMap<Arc<str>, usize>,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    oldest: Option<usize>,
    newest: Option<usize>,
    deadlines: BTreeSet<(u64, usize)>,
    by_sid: HashMap<String, HashSet<usize>>,
    by_sub: HashMap<SubKey, HashSet<usize>>,
}

/// The shard's candidate for eviction: its least recently active session and its earliest
/// absolute deadline.
#[derive(Clone, Copy)]
struct Candidate {
    oldest_stamp: u64,
    earliest_deadline: u64,
}

fn sub_key(state: &StateData) -> Option<SubKey> {
    Some((state.iss()?.to_owned(), state.sub()?.to_owned()))
}

impl Shard {
    fn slot(&self, i: usize) -> Option<&Slot> {
        self.slots.get(i).and_then(Option::as_ref)
    }

    fn slot_mut(&mut self, i: usize) -> Option<&mut Slot> {
        self.slots.get_mut(i).and_then(Option::as_mut)
    }

    fn find(&self, id: &str) -> Option<usize> {
        self.ids.get(id).copied()
    }

    /// Takes slot `i` out of the recency list.
    fn unlink(&mut self, i: usize) {
        let Some(slot) = self.slot(i) else { return };
        let (older, newer) = (slot.older, slot.newer);
        match self.slot_mut(older) {
            Some(o) => o.newer = newer,
            None => self.oldest = (newer != NIL).then_some(newer),
        }
        match self.slot_mut(newer) {
            Some(n) => n.older = older,
            None => self.newest = (older != NIL).then_some(older),
        }
    }

    /// Puts slot `i` at the most recently active end of the list.
    fn link_newest(&mut self, i: usize) {
        let previous = self.newest;
        if let Some(slot) = self.slot_mut(i) {
            slot.older = previous.unwrap_or(NIL);
            slot.newer = NIL;
        }
        match previous.and_then(|p| self.slot_mut(p)) {
            Some(p) => p.newer = i,
            None => self.oldest = Some(i),
        }
        self.newest = Some(i);
    }

    fn index(&mut self, i: usize) {
        let Some(slot) = self.slot(i) else { return };
        let sid = (!slot.state.internal.sid.is_empty()).then(|| slot.state.internal.sid.clone());
        let sub = sub_key(&slot.state);
        let deadline = slot.deadline;
        if let Some(sid) = sid {
            self.by_sid.entry(sid).or_default().insert(i);
        }
        if let Some(sub) = sub {
            self.by_sub.entry(sub).or_default().insert(i);
        }
        self.deadlines.insert((deadline, i));
    }

    fn unindex(&mut self, i: usize) {
        let Some(slot) = self.slot(i) else { return };
        let sid = slot.state.internal.sid.clone();
        let sub = sub_key(&slot.state);
        let deadline = slot.deadline;
        if let Some(set) = self.by_sid.get_mut(&sid) {
            set.remove(&i);
            if set.is_empty() {
                self.by_sid.remove(&sid);
            }
        }
        if let Some(sub) = sub {
            if let Some(set) = self.by_sub.get_mut(&sub) {
                set.remove(&i);
                if set.is_empty() {
                    self.by_sub.remove(&sub);
                }
            }
        }
        self.deadlines.remove(&(deadline, i));
    }

    /// Stores a new session as the most recently active one.
    fn insert(&mut self, id: Arc<str>, state: StateData, stamp: u64, deadline: u64) {
        let slot = Slot {
            id: id.clone(),
            state: Arc::new(state),
            stamp,
            deadline,
            older: NIL,
            newer: NIL,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(slot);
                i
            }
            None => {
                self.slots.push(Some(slot));
                self.slots.len() - 1
            }
        };
        self.ids.insert(id, i);
        self.link_newest(i);
        self.index(i);
    }

    /// Replaces the session in slot `i`, now the most recently active one.
    fn replace(&mut self, i: usize, state: StateData, stamp: u64, deadline: u64) {
        self.unindex(i);
        self.unlink(i);
        if let Some(slot) = self.slot_mut(i) {
            slot.state = Arc::new(state);
            slot.stamp = stamp;
            slot.deadline = deadline;
        }
        self.link_newest(i);
        self.index(i);
    }

    /// Marks slot `i` as used at `now` (seconds) with `stamp`.
    fn touch(&mut self, i: usize, now: u64, stamp: u64) {
        self.unlink(i);
        if let Some(slot) = self.slot_mut(i) {
            Arc::make_mut(&mut slot.state).internal.last_active_at = Some(now);
            slot.stamp = stamp;
        }
        self.link_newest(i);
    }

    fn remove(&mut self, i: usize) -> Option<Slot> {
        self.unindex(i);
        self.unlink(i);
        let slot = self.slots.get_mut(i)?.take()?;
        self.ids.remove(&slot.id);
        self.free.push(i);
        Some(slot)
    }

    fn candidate(&self) -> Option<Candidate> {
        let oldest = self.slot(self.oldest?)?;
        let (earliest_deadline, _) = *self.deadlines.first()?;
        Some(Candidate {
            oldest_stamp: oldest.stamp,
            earliest_deadline,
        })
    }
}

/// A state store keeping sessions in memory, keyed by a session id held in a cookie.
///
/// The sessions are split over independently locked shards (by a hash of the id), each
/// ordered by last activity and by absolute deadline and indexed by `sid` and by user, so
/// reads, saves at capacity and back-channel logouts cost the same with a thousand sessions
/// as with a million, and requests on different sessions rarely wait for each other.
pub struct MemoryStateStore {
    shards: Box<[Mutex<Shard>]>,
    /// Picks an id's shard.
    hasher: RandomState,
    /// Sessions held, over all shards.
    count: AtomicUsize,
    /// The store-wide recency sequence ([`Slot::stamp`]).
    stamps: AtomicU64,
    cookie_name: String,
    secure: bool,
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
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            count: AtomicUsize::new(0),
            stamps: AtomicU64::new(0),
            cookie_name: DEFAULT_SESSION_ID_COOKIE.to_owned(),
            secure: true,
            lifetime: SessionLifetime::default(),
            capacity: DEFAULT_SESSION_CAPACITY,
        }
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
        self.count.load(Ordering::Relaxed)
    }

    /// Whether no session is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores a session under a new id at `now` and returns the id (for tests and imports).
    /// Send the id to the browser in the cookie [`MemoryStateStore::cookie`] names.
    pub fn insert(&self, state: StateData, now: UnixTime) -> Result<String, StoreError> {
        let id = new_id()?;
        self.put(&id, state.written_at(now), now);
        Ok(id)
    }

    fn shard(&self, id: &str) -> &Mutex<Shard> {
        // The modulo keeps the index below SHARDS, so the cast cannot truncate a used bit.
        &self.shards[(self.hasher.hash_one(id) % SHARDS as u64) as usize]
    }

    fn next_stamp(&self) -> u64 {
        self.stamps.fetch_add(1, Ordering::Relaxed)
    }

    fn deadline(&self, state: &StateData) -> u64 {
        state
            .internal
            .created_at
            .saturating_add(self.lifetime.absolute.as_secs())
    }

    /// Inserts under a new id, keeping the store within its capacity: a session past its
    /// absolute lifetime goes first, else the least recently active one.
    fn put(&self, id: &str, state: StateData, now: UnixTime) {
        let deadline = self.deadline(&state);
        {
            let mut shard = lock(self.shard(id));
            let stamp = self.next_stamp();
            match shard.find(id) {
                Some(i) => shard.replace(i, state, stamp, deadline),
                None => {
                    shard.insert(Arc::from(id), state, stamp, deadline);
                    self.count.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        while self.len() > self.capacity {
            if !self.evict_one(now) {
                break;
            }
        }
    }

    /// Removes one session: the one with the earliest absolute deadline when that deadline
    /// has passed, else the least recently active. Visits each shard once (a constant), never
    /// every session. Returns whether a session was removed.
    fn evict_one(&self, now: UnixTime) -> bool {
        let now = now.as_secs();
        let mut expired: Option<(u64, usize)> = None;
        let mut oldest: Option<(u64, usize)> = None;
        for (n, shard) in self.shards.iter().enumerate() {
            let Some(c) = lock(shard).candidate() else {
                continue;
            };
            if c.earliest_deadline <= now && expired.is_none_or(|(d, _)| c.earliest_deadline < d) {
                expired = Some((c.earliest_deadline, n));
            }
            if oldest.is_none_or(|(s, _)| c.oldest_stamp < s) {
                oldest = Some((c.oldest_stamp, n));
            }
        }
        let (by_deadline, n) = match (expired, oldest) {
            (Some((_, n)), _) => (true, n),
            (None, Some((_, n))) => (false, n),
            (None, None) => return false,
        };
        let mut shard = lock(&self.shards[n]);
        let victim = if by_deadline {
            shard.deadlines.first().map(|&(_, i)| i)
        } else {
            shard.oldest
        };
        match victim.and_then(|i| shard.remove(i)) {
            Some(_) => {
                self.count.fetch_sub(1, Ordering::Relaxed);
                true
            }
            None => false,
        }
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

/// Whether a session is one a logout token ends (Back-Channel Logout 1.0 §2.6, decided by
/// the core): by `sid`, by `sub`, or — when the token carries both — only a session matching
/// both; the session's issuer (when recorded) must be the token's.
fn matches_logout(state: &StateData, claims: &LogoutTokenClaims) -> bool {
    auth0_server_protocol::logout::logout_token_selects(claims, state)
}

impl StateStore for MemoryStateStore {
    type Options = CookieOptions;

    /// The session of the request's id cookie. A session past its lifetime is removed and
    /// its cookie cleared; a session last used more than a minute ago is stamped active.
    fn get(
        &self,
        options: &mut CookieOptions,
        now: UnixTime,
    ) -> Result<Option<Arc<StateData>>, StoreError> {
        let Some(id) = self.id(options) else {
            return Ok(None);
        };
        let mut shard = lock(self.shard(id));
        let Some(i) = shard.find(id) else {
            return Ok(None);
        };
        let Some(slot) = shard.slot(i) else {
            return Ok(None);
        };
        if !self.lifetime.is_live(&slot.state, now) {
            shard.remove(i);
            drop(shard);
            self.count.fetch_sub(1, Ordering::Relaxed);
            options.remove_cookie(&self.cookie_name, self.attributes());
            return Ok(None);
        }
        if self.lifetime.needs_touch(&slot.state, now) {
            let stamp = self.next_stamp();
            shard.touch(i, now.as_secs(), stamp);
        }
        Ok(shard.slot(i).map(|slot| Arc::clone(&slot.state)))
    }

    fn set(
        &self,
        state: &StateData,
        options: &mut CookieOptions,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let state = state.written_at(now);
        if let Some(id) = self.id(options) {
            let mut shard = lock(self.shard(id));
            if let Some(i) = shard.find(id) {
                let deadline = self.deadline(&state);
                let stamp = self.next_stamp();
                shard.replace(i, state, stamp, deadline);
                return Ok(());
            }
        }
        let id = new_id()?;
        self.put(&id, state, now);
        options.set_cookie(&self.cookie_name, &id, self.attributes());
        Ok(())
    }

    /// Applies the update to the session of the request's id cookie under its shard's lock,
    /// so concurrent updates of one session all land; a session that was deleted (logout,
    /// back-channel logout), expired or evicted meanwhile stays gone.
    fn update(
        &self,
        update: &SessionUpdate,
        options: &mut CookieOptions,
        now: UnixTime,
    ) -> Result<Updated, StoreError> {
        let Some(id) = self.id(options) else {
            return Ok(Updated::Gone);
        };
        let mut shard = lock(self.shard(id));
        let Some(i) = shard.find(id) else {
            return Ok(Updated::Gone);
        };
        let Some(slot) = shard.slot(i) else {
            return Ok(Updated::Gone);
        };
        if !self.lifetime.is_live(&slot.state, now) {
            return Ok(Updated::Gone);
        }
        let Merged::Updated(state) = update.apply(StateData::clone(&slot.state)) else {
            return Ok(Updated::Gone);
        };
        if state == *slot.state {
            // Another request already saved the same result (callers sharing one refresh).
            return Ok(Updated::Saved);
        }
        let state = state.written_at(now);
        let deadline = self.deadline(&state);
        let stamp = self.next_stamp();
        shard.replace(i, state, stamp, deadline);
        Ok(Updated::Saved)
    }

    fn delete(&self, options: &mut CookieOptions, _now: UnixTime) -> Result<(), StoreError> {
        if let Some(id) = self.id(options) {
            let mut shard = lock(self.shard(id));
            if let Some(i) = shard.find(id) {
                shard.remove(i);
                self.count.fetch_sub(1, Ordering::Relaxed);
            }
        }
        if options.cookie(&self.cookie_name).is_some() {
            options.remove_cookie(&self.cookie_name, self.attributes());
        }
        Ok(())
    }

    /// Ends the sessions a logout token names, through the `sid` and user indexes of each
    /// shard: the cost is the number of shards plus the sessions ended.
    fn delete_by_logout_token(
        &self,
        claims: &LogoutTokenClaims,
        _options: &mut CookieOptions,
        _now: UnixTime,
    ) -> Result<(), StoreError> {
        let sub_key = match (&claims.sid, &claims.sub) {
            (Some(_), _) => None,
            (None, Some(sub)) => Some((claims.iss.clone(), sub.clone())),
            (None, None) => return Ok(()),
        };
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            let found = match (&claims.sid, &sub_key) {
                (Some(sid), _) => shard.by_sid.get(sid.as_str()),
                (None, Some(key)) => shard.by_sub.get(key),
                (None, None) => None,
            };
            let Some(found) = found else { continue };
            let ends: Vec<usize> = found
                .iter()
                .copied()
                .filter(|&i| {
                    shard
                        .slot(i)
                        .is_some_and(|s| matches_logout(&s.state, claims))
                })
                .collect();
            for i in ends {
                if shard.remove(i).is_some() {
                    self.count.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }
}

/// A transaction store keeping in-flight logins in memory, keyed by the transaction key and
/// bound to the browser that started the login: `set` writes a cookie named after the key
/// (`HttpOnly; Secure; SameSite=Lax; Path=/`) with a random value, and `get` returns the
/// transaction only to a request carrying that value.
/// A transaction lives [`TRANSACTION_LIFETIME`] seconds; past [`DEFAULT_TRANSACTION_CAPACITY`]
/// the oldest are dropped first (expired ones are the oldest), found without a scan: a flood
/// of new transactions never pushes out a login younger than them.
pub struct MemoryTransactionStore {
    transactions: Mutex<Transactions>,
    secure: bool,
}

/// A stored login transaction.
struct PendingLogin {
    /// The binding cookie's value.
    binding: String,
    transaction: TransactionData,
    /// Its key in [`Transactions::by_age`].
    age: (u64, u64),
}

/// The transactions by key, and ordered by age so that the oldest (which is also the first
/// to expire) is found without a scan when the store is full.
#[derive(Default)]
struct Transactions {
    by_key: HashMap<String, PendingLogin>,
    /// (created_at, arrival sequence) → key.
    by_age: BTreeMap<(u64, u64), String>,
    arrivals: u64,
}

impl Transactions {
    fn remove(&mut self, key: &str) -> Option<PendingLogin> {
        let pending = self.by_key.remove(key)?;
        self.by_age.remove(&pending.age);
        Some(pending)
    }

    /// Stores a transaction, dropping the oldest ones first while the store is full.
    fn insert(&mut self, key: &str, binding: String, transaction: TransactionData) {
        self.remove(key);
        while self.by_key.len() >= DEFAULT_TRANSACTION_CAPACITY {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            self.by_key.remove(&oldest);
        }
        let age = (transaction.created_at, self.arrivals);
        self.arrivals = self.arrivals.wrapping_add(1);
        self.by_age.insert(age, key.to_owned());
        self.by_key.insert(
            key.to_owned(),
            PendingLogin {
                binding,
                transaction,
                age,
            },
        );
    }
}

impl Default for MemoryTransactionStore {
    fn default() -> Self {
        MemoryTransactionStore {
            transactions: Mutex::default(),
            secure: true,
        }
    }
}

impl std::fmt::Debug for MemoryTransactionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTransactionStore")
            .field("transactions", &lock(&self.transactions).by_key.len())
            .finish()
    }
}

impl MemoryTransactionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
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
        now: UnixTime,
    ) -> Result<Option<TransactionData>, StoreError> {
        let Some(cookie) = options.cookie(key) else {
            return Ok(None);
        };
        let now = now.as_secs();
        let mut transactions = lock(&self.transactions);
        match transactions.by_key.get(key) {
            Some(p) if Self::is_live(&p.transaction, now) => {
                Ok(constant_time_eq(&p.binding, cookie).then(|| p.transaction.clone()))
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
        now: UnixTime,
    ) -> Result<(), StoreError> {
        if !crate::store::cookie::chunks::is_valid_name(key) {
            return Err(StoreError::new(
                "memory transaction store: the transaction key is not a valid cookie name",
            ));
        }
        let binding = random_token(BINDING_BYTES)?;
        let tx = transaction.written_at(now);
        let now = now.as_secs();
        let max_age = tx
            .created_at
            .saturating_add(TRANSACTION_LIFETIME)
            .saturating_sub(now)
            .min(TRANSACTION_LIFETIME);
        lock(&self.transactions).insert(key, binding.clone(), tx);
        options.set_cookie(
            key,
            &binding,
            &cookie_attributes_max_age(self.secure, max_age),
        );
        Ok(())
    }

    /// Deletes the transaction and clears its binding cookie.
    fn delete(
        &self,
        key: &str,
        options: &mut CookieOptions,
        _now: UnixTime,
    ) -> Result<(), StoreError> {
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
    use crate::clock::Clock;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    /// The wall clock, for store calls made outside a client (which would hand them its clock).
    fn system_now() -> UnixTime {
        Clock::system().now()
    }

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

    /// Reads hand out the stored session, not a copy; a touch gives later readers a new one
    /// and leaves the one an earlier reader holds as it was.
    #[test]
    fn reads_share_the_stored_session_and_a_touch_does_not_change_a_held_one() {
        let store = MemoryStateStore::new();
        let t0 = UnixTime::from_secs(1_750_000_000);
        let id = store.insert(session("a", "s1"), t0).unwrap();
        let first = store
            .get(&mut options_for(&store, &id), t0)
            .unwrap()
            .unwrap();
        let second = store
            .get(&mut options_for(&store, &id), t0)
            .unwrap()
            .unwrap();
        assert!(Arc::ptr_eq(&first, &second), "the stored session, shared");
        let later = t0 + std::time::Duration::from_secs(3600);
        let touched = store
            .get(&mut options_for(&store, &id), later)
            .unwrap()
            .unwrap();
        assert_eq!(touched.internal.last_active_at, Some(later.as_secs()));
        assert_eq!(first.internal.last_active_at, Some(t0.as_secs()));
        assert!(!Arc::ptr_eq(&first, &touched));
    }

    #[test]
    fn set_creates_an_id_cookie_and_get_reads_it() {
        let store = MemoryStateStore::new();
        let mut o = CookieOptions::new();
        assert_eq!(store.get(&mut o, system_now()).unwrap(), None);
        store
            .set(&session("a", "s1"), &mut o, system_now())
            .unwrap();
        let header = o.set_cookie_headers()[0].to_str().unwrap().to_owned();
        // The attributes every SDK cookie carries (one order for every store now).
        assert!(
            header.contains("HttpOnly; Secure; SameSite=Lax; Path=/"),
            "{header}"
        );
        let id = o.cookie(store.cookie()).unwrap().to_owned();
        assert_eq!(URL_SAFE_NO_PAD.decode(&id).unwrap().len(), 32);
        let mut next = options_for(&store, &id);
        let got = store.get(&mut next, system_now()).unwrap().unwrap();
        assert_eq!((got.sub(), got.internal.sid.as_str()), (Some("a"), "s1"));
        assert!(got.internal.created_at > 0, "stamped on write");
        // Updating keeps the id and writes no new cookie.
        store
            .set(&session("a", "s2"), &mut next, system_now())
            .unwrap();
        assert!(next.set_cookie_headers().is_empty());
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn unknown_ids_are_not_adopted() {
        let store = MemoryStateStore::new().secure(false);
        let mut o = options_for(&store, "attacker-chosen");
        store.set(&session("a", "s"), &mut o, system_now()).unwrap();
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
        let id = store.insert(session("a", "s"), system_now()).unwrap();
        let mut o = options_for(&store, &id);
        store.delete(&mut o, system_now()).unwrap();
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
        store.insert(session("alice", "s1"), system_now()).unwrap();
        store.insert(session("alice", "s2"), system_now()).unwrap();
        store.insert(session("bob", "s3"), system_now()).unwrap();
        let mut o = CookieOptions::new();
        let claims = |sub: Option<&str>, sid: Option<&str>, iss: &str| LogoutTokenClaims {
            iss: iss.into(),
            sub: sub.map(Into::into),
            sid: sid.map(Into::into),
        };
        // sid and sub: only the sid's session ends.
        store
            .delete_by_logout_token(
                &claims(Some("alice"), Some("s1"), "https://t/"),
                &mut o,
                system_now(),
            )
            .unwrap();
        assert_eq!(store.len(), 2);
        // sub of another issuer: nothing.
        store
            .delete_by_logout_token(
                &claims(Some("alice"), None, "https://evil/"),
                &mut o,
                system_now(),
            )
            .unwrap();
        assert_eq!(store.len(), 2);
        store
            .delete_by_logout_token(
                &claims(Some("alice"), None, "https://t/"),
                &mut o,
                system_now(),
            )
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
            .inactivity_duration(Duration::from_secs(100))
            .absolute_duration(Duration::from_secs(250));
        let id = store.insert(session("a", "s"), clock.now()).unwrap();
        // Used every 90 s: the rolling inactivity limit keeps moving...
        for _ in 0..2 {
            now.fetch_add(90, Ordering::SeqCst);
            assert!(
                store
                    .get(&mut options_for(&store, &id), clock.now())
                    .unwrap()
                    .is_some()
            );
        }
        // ...until the absolute limit (250 s after creation).
        now.fetch_add(71, Ordering::SeqCst);
        let mut o = options_for(&store, &id);
        assert_eq!(store.get(&mut o, clock.now()).unwrap(), None);
        assert!(
            o.set_cookie_headers()[0]
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
        );
        assert!(store.is_empty());
        // Inactivity alone: 101 s without use.
        let id = store.insert(session("b", "s"), clock.now()).unwrap();
        now.fetch_add(101, Ordering::SeqCst);
        assert_eq!(
            store
                .get(&mut options_for(&store, &id), clock.now())
                .unwrap(),
            None
        );
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
        let store = MemoryStateStore::new().capacity(2);
        let first = store.insert(session("a", "1"), clock.now()).unwrap();
        now.fetch_add(1, Ordering::SeqCst);
        let second = store.insert(session("b", "2"), clock.now()).unwrap();
        now.fetch_add(1, Ordering::SeqCst);
        let third = store.insert(session("c", "3"), clock.now()).unwrap();
        assert_eq!(store.len(), 2);
        assert_eq!(
            store
                .get(&mut options_for(&store, &first), clock.now())
                .unwrap(),
            None
        );
        assert!(
            store
                .get(&mut options_for(&store, &second), clock.now())
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .get(&mut options_for(&store, &third), clock.now())
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
        let store = MemoryTransactionStore::new();
        let mut o = CookieOptions::new();
        store
            .set("_a0_tx.s", &TransactionData::default(), &mut o, clock.now())
            .unwrap();
        now.fetch_add(TRANSACTION_LIFETIME - 1, Ordering::SeqCst);
        assert!(
            store
                .get("_a0_tx.s", &mut o, clock.now())
                .unwrap()
                .is_some()
        );
        now.fetch_add(1, Ordering::SeqCst);
        assert!(
            store
                .get("_a0_tx.s", &mut o, clock.now())
                .unwrap()
                .is_none()
        );
    }

    fn test_clock() -> (std::sync::Arc<std::sync::atomic::AtomicU64>, Clock) {
        use std::sync::atomic::{AtomicU64, Ordering};
        let now = std::sync::Arc::new(AtomicU64::new(1_000_000));
        let clock = {
            let now = now.clone();
            Clock::from_fn(move || now.load(Ordering::SeqCst))
        };
        (now, clock)
    }

    #[test]
    fn a_session_past_its_absolute_lifetime_is_evicted_before_the_least_recently_active() {
        use std::sync::atomic::Ordering;
        let (now, clock) = test_clock();
        let store = MemoryStateStore::new()
            .capacity(2)
            .absolute_duration(Duration::from_secs(100));
        let idle = store.insert(session("a", "1"), clock.now()).unwrap();
        // Created long ago, but used just now: past its absolute lifetime.
        let mut old = session("b", "2");
        old.internal.created_at = 1_000_000 - 500;
        now.fetch_add(10, Ordering::SeqCst);
        let stale = store.insert(old, clock.now()).unwrap();
        store.insert(session("c", "3"), clock.now()).unwrap();
        assert_eq!(store.len(), 2);
        assert_eq!(
            store
                .get(&mut options_for(&store, &stale), clock.now())
                .unwrap(),
            None
        );
        assert!(
            store
                .get(&mut options_for(&store, &idle), clock.now())
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn a_touched_session_outlives_an_untouched_older_one_at_capacity() {
        use std::sync::atomic::Ordering;
        let (now, clock) = test_clock();
        let store = MemoryStateStore::new().capacity(3);
        let first = store.insert(session("a", "1"), clock.now()).unwrap();
        now.fetch_add(1, Ordering::SeqCst);
        let second = store.insert(session("b", "2"), clock.now()).unwrap();
        now.fetch_add(1, Ordering::SeqCst);
        store.insert(session("c", "3"), clock.now()).unwrap();
        // Used again past the touch interval: now the most recently active.
        now.fetch_add(120, Ordering::SeqCst);
        assert!(
            store
                .get(&mut options_for(&store, &first), clock.now())
                .unwrap()
                .is_some()
        );
        store.insert(session("d", "4"), clock.now()).unwrap();
        assert_eq!(store.len(), 3);
        assert!(
            store
                .get(&mut options_for(&store, &first), clock.now())
                .unwrap()
                .is_some()
        );
        assert_eq!(
            store
                .get(&mut options_for(&store, &second), clock.now())
                .unwrap(),
            None
        );
    }

    #[test]
    fn logout_indexes_follow_updates_and_removals() {
        let store = MemoryStateStore::new();
        let mut o = CookieOptions::new();
        let claims = |sub: Option<&str>, sid: Option<&str>| LogoutTokenClaims {
            iss: "https://t/".into(),
            sub: sub.map(Into::into),
            sid: sid.map(Into::into),
        };
        let ids: Vec<String> = (0..200)
            .map(|n| {
                store
                    .insert(
                        session(&format!("user{}", n % 10), &format!("s{n}")),
                        system_now(),
                    )
                    .unwrap()
            })
            .collect();
        // Moving a session to another sid and user re-indexes it.
        let mut moved = options_for(&store, &ids[0]);
        store
            .set(&session("mallory", "s-new"), &mut moved, system_now())
            .unwrap();
        store
            .delete_by_logout_token(&claims(None, Some("s0")), &mut o, system_now())
            .unwrap();
        assert_eq!(store.len(), 200);
        store
            .delete_by_logout_token(&claims(Some("user0"), None), &mut o, system_now())
            .unwrap();
        assert_eq!(store.len(), 181);
        store
            .delete_by_logout_token(&claims(None, Some("s-new")), &mut o, system_now())
            .unwrap();
        assert_eq!(store.len(), 180);
        // A deleted session leaves no stale index entry behind.
        store
            .delete(&mut options_for(&store, &ids[1]), system_now())
            .unwrap();
        store
            .delete_by_logout_token(&claims(Some("user1"), None), &mut o, system_now())
            .unwrap();
        assert_eq!(store.len(), 160);
        store
            .delete_by_logout_token(&claims(None, Some("s2")), &mut o, system_now())
            .unwrap();
        assert_eq!(store.len(), 159);
    }

    #[test]
    fn a_flood_of_transactions_evicts_the_oldest_first() {
        use std::sync::atomic::Ordering;
        let (now, clock) = test_clock();
        let store = MemoryTransactionStore::new();
        let mut oldest = CookieOptions::new();
        store
            .set(
                "_a0_tx.oldest",
                &TransactionData::default(),
                &mut oldest,
                clock.now(),
            )
            .unwrap();
        now.fetch_add(10, Ordering::SeqCst);
        let mut pending = CookieOptions::new();
        store
            .set(
                "_a0_tx.pending",
                &TransactionData::default(),
                &mut pending,
                clock.now(),
            )
            .unwrap();
        now.fetch_add(10, Ordering::SeqCst);
        for n in 0..DEFAULT_TRANSACTION_CAPACITY - 1 {
            store
                .set(
                    &format!("_a0_tx.f{n}"),
                    &TransactionData::default(),
                    &mut CookieOptions::new(),
                    clock.now(),
                )
                .unwrap();
        }
        let cookies = |o: &CookieOptions| {
            let header = o.set_cookie_headers()[0].to_str().unwrap().to_owned();
            let pair = header.split(';').next().unwrap().to_owned();
            let mut h = http::HeaderMap::new();
            h.insert(http::header::COOKIE, pair.parse().unwrap());
            CookieOptions::from_request_headers(&h)
        };
        assert!(
            store
                .get("_a0_tx.oldest", &mut cookies(&oldest), clock.now())
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .get("_a0_tx.pending", &mut cookies(&pending), clock.now())
                .unwrap()
                .is_some()
        );
        assert_eq!(
            lock(&store.transactions).by_key.len(),
            DEFAULT_TRANSACTION_CAPACITY
        );
    }
}
