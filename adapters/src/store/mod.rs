//! Store traits and the stores shipped with the SDK.
//!
//! Two roles, as in Auth0's other server SDKs: a **state store** keeps the session, a
//! **transaction store** keeps in-flight logins. Each has an associated `Options` type — the
//! seed guide's `store_options` — that every client operation hands to every store call,
//! untouched: for a cookie store it is the request's headers plus a sink for `Set-Cookie`
//! values ([`CookieOptions`]); for a server-side store it can be `()`.
//!
//! The blocking traits are [`StateStore`] and [`TransactionStore`]; the async client uses
//! [`AsyncStateStore`] and [`AsyncTransactionStore`]. Every blocking store is also an async
//! store (a blanket implementation), which suits stores that never wait on I/O, such as the
//! in-memory and cookie stores.
//!
//! Every call receives `now`: the client's clock, read by the driver (the one place the SDK
//! reads it). Stores own no clock; expiry, inactivity and the times they stamp on what they
//! write all come from `now`, so a test (or an application with its own clock) moves time
//! for the whole client at once.

pub mod cookie;
mod kit;
pub mod memory;
mod options;
#[cfg(feature = "redis")]
pub mod redis;
pub mod revocation;

pub use cookie::{CookieStateStore, CookieTransactionStore};
pub use options::CookieOptions;

use auth0_server_protocol::effect::{JtiRecord, LogoutTokenClaims};
use auth0_server_protocol::session::{Merged, SessionUpdate, StateData, Updated};
use auth0_server_protocol::time::UnixTime;
use auth0_server_protocol::transaction::TransactionData;
use std::future::Future;
use std::sync::Arc;

/// A store failed. Never carries session contents or tokens.
#[derive(Debug, thiserror::Error)]
#[error("session store error: {message}")]
pub struct StoreError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// Where a back-channel logout token's `jti` was recorded (Back-Channel Logout 1.0 §2.6:
/// a logout token is accepted once within its lifetime).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogoutTokenIdRecord {
    /// The store keeps no record shared between instances; the client keeps one in its
    /// process (enough for one instance).
    NotKept,
    /// The store checked and recorded it in one atomic step that every instance sharing the
    /// store sees: whether the token was new or a replay.
    Kept(JtiRecord),
}

impl StoreError {
    /// A store error with a message (which must not contain secrets).
    pub fn new(message: impl Into<String>) -> Self {
        StoreError {
            message: message.into(),
            source: None,
        }
    }
    /// A store error caused by another error.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// Where sessions live (blocking).
pub trait StateStore: Send + Sync {
    /// Per-request data handed to every call, e.g. the request's cookies.
    type Options: Send;
    /// The current session, or `None`. A session that cannot be read (tampered, expired,
    /// foreign) is `None`, not an error.
    ///
    /// The session is shared (`Arc`): a store that keeps decoded sessions (the cookie and
    /// Redis stores' caches, the memory store) returns the one it holds without copying it,
    /// and the SDK copies it only to change it. A store that decodes on every call returns
    /// `Arc::new(state)`.
    fn get(
        &self,
        options: &mut Self::Options,
        now: UnixTime,
    ) -> Result<Option<Arc<StateData>>, StoreError>;
    /// Stores the session (a login creates it; the cookie or id names it afterwards).
    fn set(
        &self,
        state: &StateData,
        options: &mut Self::Options,
        now: UnixTime,
    ) -> Result<(), StoreError>;
    /// Applies an operation's changes to the session stored now, only if it still exists
    /// (an update-only save, [`SessionUpdate::apply`]): a session deleted by logout,
    /// back-channel logout or expiry while a refresh was in flight stays deleted
    /// ([`Updated::Gone`]), and what other requests saved meanwhile is kept.
    ///
    /// The default reads, applies and writes; a store whose sessions several requests write
    /// at once should do it atomically (the memory and Redis stores do).
    fn update(
        &self,
        update: &SessionUpdate,
        options: &mut Self::Options,
        now: UnixTime,
    ) -> Result<Updated, StoreError> {
        let Some(current) = self.get(options, now)? else {
            return Ok(Updated::Gone);
        };
        match update.apply(Arc::unwrap_or_clone(current)) {
            Merged::Updated(state) => {
                self.set(&state, options, now)?;
                Ok(Updated::Saved)
            }
            Merged::OtherSession => Ok(Updated::Gone),
        }
    }
    /// Deletes the session.
    fn delete(&self, options: &mut Self::Options, now: UnixTime) -> Result<(), StoreError>;
    /// Deletes every session matching a verified back-channel logout token (by `sid`, or by
    /// `sub`, of the same issuer). Stores that cannot enumerate sessions (cookies) return an
    /// error.
    fn delete_by_logout_token(
        &self,
        claims: &LogoutTokenClaims,
        options: &mut Self::Options,
        now: UnixTime,
    ) -> Result<(), StoreError>;
    /// Records that the back-channel logout token named `key` (its issuer and `jti`, as the
    /// core names it) was accepted, unless it already was, and keeps the record until
    /// `until` (the token's expiry plus the clock tolerance); `now` is the client's clock.
    /// The check and the record are one atomic step. The default keeps nothing
    /// ([`LogoutTokenIdRecord::NotKept`]): the client then records it in its process. A store
    /// shared by several instances (Redis) records it there, so a token replayed to another
    /// instance is refused too.
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

/// Where in-flight logins live (blocking), keyed by a key derived from `state`.
pub trait TransactionStore: Send + Sync {
    /// Per-request data handed to every call.
    type Options: Send;
    /// The transaction under `key`, or `None`.
    fn get(
        &self,
        key: &str,
        options: &mut Self::Options,
        now: UnixTime,
    ) -> Result<Option<TransactionData>, StoreError>;
    /// Stores a transaction under `key`.
    fn set(
        &self,
        key: &str,
        transaction: &TransactionData,
        options: &mut Self::Options,
        now: UnixTime,
    ) -> Result<(), StoreError>;
    /// Deletes the transaction under `key`.
    fn delete(
        &self,
        key: &str,
        options: &mut Self::Options,
        now: UnixTime,
    ) -> Result<(), StoreError>;
}

/// Where sessions live (async).
pub trait AsyncStateStore: Send + Sync {
    /// Per-request data handed to every call.
    type Options: Send;
    /// See [`StateStore::get`].
    fn get(
        &self,
        options: &mut Self::Options,
        now: UnixTime,
    ) -> impl Future<Output = Result<Option<Arc<StateData>>, StoreError>> + Send;
    /// See [`StateStore::set`].
    fn set(
        &self,
        state: &StateData,
        options: &mut Self::Options,
        now: UnixTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// See [`StateStore::update`]; the default reads, applies and writes.
    fn update(
        &self,
        update: &SessionUpdate,
        options: &mut Self::Options,
        now: UnixTime,
    ) -> impl Future<Output = Result<Updated, StoreError>> + Send {
        async move {
            let Some(current) = self.get(options, now).await? else {
                return Ok(Updated::Gone);
            };
            match update.apply(Arc::unwrap_or_clone(current)) {
                Merged::Updated(state) => {
                    self.set(&state, options, now).await?;
                    Ok(Updated::Saved)
                }
                Merged::OtherSession => Ok(Updated::Gone),
            }
        }
    }
    /// See [`StateStore::delete`].
    fn delete(
        &self,
        options: &mut Self::Options,
        now: UnixTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// See [`StateStore::delete_by_logout_token`].
    fn delete_by_logout_token(
        &self,
        claims: &LogoutTokenClaims,
        options: &mut Self::Options,
        now: UnixTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// See [`StateStore::record_logout_token_id`]; the default keeps nothing.
    fn record_logout_token_id(
        &self,
        key: &str,
        until: UnixTime,
        now: UnixTime,
    ) -> impl Future<Output = Result<LogoutTokenIdRecord, StoreError>> + Send {
        let _ = (key, until, now);
        std::future::ready(Ok(LogoutTokenIdRecord::NotKept))
    }
}

/// Where in-flight logins live (async).
pub trait AsyncTransactionStore: Send + Sync {
    /// Per-request data handed to every call.
    type Options: Send;
    /// See [`TransactionStore::get`].
    fn get(
        &self,
        key: &str,
        options: &mut Self::Options,
        now: UnixTime,
    ) -> impl Future<Output = Result<Option<TransactionData>, StoreError>> + Send;
    /// See [`TransactionStore::set`].
    fn set(
        &self,
        key: &str,
        transaction: &TransactionData,
        options: &mut Self::Options,
        now: UnixTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// See [`TransactionStore::delete`].
    fn delete(
        &self,
        key: &str,
        options: &mut Self::Options,
        now: UnixTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl<T: StateStore> AsyncStateStore for T {
    type Options = T::Options;
    fn get(
        &self,
        options: &mut Self::Options,
        now: UnixTime,
    ) -> impl Future<Output = Result<Option<Arc<StateData>>, StoreError>> + Send {
        std::future::ready(StateStore::get(self, options, now))
    }
    fn set(
        &self,
        state: &StateData,
        options: &mut Self::Options,
        now: UnixTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        std::future::ready(StateStore::set(self, state, options, now))
    }
    fn update(
        &self,
        update: &SessionUpdate,
        options: &mut Self::Options,
        now: UnixTime,
    ) -> impl Future<Output = Result<Updated, StoreError>> + Send {
        std::future::ready(StateStore::update(self, update, options, now))
    }
    fn delete(
        &self,
        options: &mut Self::Options,
        now: UnixTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        std::future::ready(StateStore::delete(self, options, now))
    }
    fn delete_by_logout_token(
        &self,
        claims: &LogoutTokenClaims,
        options: &mut Self::Options,
        now: UnixTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        std::future::ready(StateStore::delete_by_logout_token(
            self, claims, options, now,
        ))
    }
    fn record_logout_token_id(
        &self,
        key: &str,
        until: UnixTime,
        now: UnixTime,
    ) -> impl Future<Output = Result<LogoutTokenIdRecord, StoreError>> + Send {
        std::future::ready(StateStore::record_logout_token_id(self, key, until, now))
    }
}

impl<T: TransactionStore> AsyncTransactionStore for T {
    type Options = T::Options;
    fn get(
        &self,
        key: &str,
        options: &mut Self::Options,
        now: UnixTime,
    ) -> impl Future<Output = Result<Option<TransactionData>, StoreError>> + Send {
        std::future::ready(TransactionStore::get(self, key, options, now))
    }
    fn set(
        &self,
        key: &str,
        transaction: &TransactionData,
        options: &mut Self::Options,
        now: UnixTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        std::future::ready(TransactionStore::set(self, key, transaction, options, now))
    }
    fn delete(
        &self,
        key: &str,
        options: &mut Self::Options,
        now: UnixTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        std::future::ready(TransactionStore::delete(self, key, options, now))
    }
}
