//! Revocation lists: where the cookie store records ended sessions, so that a copied cookie,
//! or a refresh in flight that writes one back, does not outlive logout, and so that
//! back-channel logout can end a stateless session.
//!
//! What is recorded and what matches is decided by the core
//! ([`auth0_server_protocol::session::revocation`]); a list only stores entries and answers
//! lookups. [`MemoryRevocations`] (the default) keeps them in the process: enough for one
//! instance. With several instances, use the Redis list
//! ([`RedisRevocations`](crate::store::redis::RedisRevocations), feature `redis`) so that a
//! logout on one instance ends the session on all of them.

use crate::store::{LogoutTokenIdRecord, StoreError};
use auth0_server_protocol::session::revocation::Revocation;
use auth0_server_protocol::time::UnixTime;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// A list of ended sessions and users.
pub trait RevocationList: Send + Sync {
    /// Records an entry at `now` (merged with one of the same key: the later
    /// `created_until` and `keep_until` win).
    fn revoke(&self, revocation: &Revocation, now: UnixTime) -> Result<(), StoreError>;
    /// For each key, the `created_until` of its entry, if one is kept at `now`.
    fn lookup(&self, keys: &[String], now: UnixTime) -> Result<Vec<Option<UnixTime>>, StoreError>;
    /// Records a back-channel logout token's id where every instance sees it, like
    /// [`StateStore::record_logout_token_id`](crate::store::StateStore::record_logout_token_id)
    /// (the cookie store asks its list). The default keeps nothing: the client keeps the
    /// record in its process.
    fn record_logout_token_id(
        &self,
        key: &str,
        until: UnixTime,
        now: UnixTime,
    ) -> Result<LogoutTokenIdRecord, StoreError> {
        let _ = (key, until, now);
        Ok(LogoutTokenIdRecord::NotKept)
    }
}

/// The in-process revocation list (the cookie store's default). Entries are dropped once
/// every session they can match has expired; until then each costs about a hundred bytes.
#[derive(Debug, Default)]
pub struct MemoryRevocations {
    inner: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<String, (UnixTime, UnixTime)>,
    /// The size after the last pruning: prune again when the map has doubled.
    pruned_at: usize,
}

impl MemoryRevocations {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many entries are kept (expired ones included until the next pruning).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map
            .len()
    }

    /// Whether no entry is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RevocationList for MemoryRevocations {
    fn revoke(&self, r: &Revocation, now: UnixTime) -> Result<(), StoreError> {
        let mut e = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if e.map.len() >= 2 * e.pruned_at.max(512) {
            // Anything kept past its `keep_until` can match no live session.
            e.map.retain(|_, (_, keep_until)| *keep_until > now);
            e.pruned_at = e.map.len();
        }
        let entry = e
            .map
            .entry(r.key.clone())
            .or_insert((r.created_until, r.keep_until));
        entry.0 = entry.0.max(r.created_until);
        entry.1 = entry.1.max(r.keep_until);
        Ok(())
    }

    fn lookup(&self, keys: &[String], now: UnixTime) -> Result<Vec<Option<UnixTime>>, StoreError> {
        let e = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if e.map.is_empty() {
            return Ok(vec![None; keys.len()]);
        }
        Ok(keys
            .iter()
            .map(|k| {
                e.map
                    .get(k)
                    .filter(|(_, keep_until)| *keep_until > now)
                    .map(|(until, _)| *until)
            })
            .collect())
    }
}
