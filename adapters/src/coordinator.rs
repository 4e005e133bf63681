//! Cross-instance coordination of refreshes (DESIGN.md §7, scale-out).
//!
//! Within one process, concurrent refreshes of one refresh token share one request
//! (single-flight) and a rotated refresh token's answer is remembered for the rotation grace
//! window. Several instances of an application behind a load balancer need the same guarantee
//! *between* processes: with refresh-token rotation and reuse detection, two instances
//! redeeming the same refresh token make Auth0 revoke the user's whole token family.
//!
//! A [`RefreshCoordinator`] (blocking client) or [`AsyncRefreshCoordinator`] (async client),
//! set with the builders' `.coordinator(...)`, decides how the one in-process leader of a
//! refresh obtains its response: by sending it (`send`, called at most once), or by taking
//! the answer another instance published. It sees only requests the core marks as
//! remembered refreshes ([`Coalesce::remember`]); discovery and JWKS fetches are idempotent
//! and stay per-process. Without a coordinator (the default) the leader simply sends.
//!
//! The SDK ships one implementation on Redis:
//! `store::redis::RedisRefreshCoordinator` (feature
//! `redis`) and its async twin (feature `redis-tokio`).
//!
//! [`Coalesce::remember`]: auth0_server_protocol::effect::Coalesce::remember

use crate::error::{Error, TransportError};
use std::future::Future;
use std::pin::Pin;

/// A response to a coordinated request, with the time (Unix seconds) it was received — by
/// this instance, or by the instance that sent the request.
#[derive(Debug)]
pub struct CoordinatedResponse {
    /// The response (any status).
    pub response: http::Response<Vec<u8>>,
    /// When it was received, Unix seconds. Expiry times are computed from it.
    pub received_at: u64,
}

/// Sends the request this instance holds; called at most once.
pub type SendRequest<'a> = Box<dyn FnOnce() -> Result<CoordinatedResponse, TransportError> + 'a>;

/// The future that sends the request this instance holds; awaited at most once.
pub type SendFuture<'a> =
    Pin<Box<dyn Future<Output = Result<CoordinatedResponse, TransportError>> + Send + 'a>>;

/// The future of [`AsyncRefreshCoordinator::coordinate`].
pub type CoordinateFuture<'a> =
    Pin<Box<dyn Future<Output = Result<CoordinatedResponse, Error>> + Send + 'a>>;

/// Coordinates the refreshes of several instances (blocking client).
///
/// Contract: for one `key`, at most one instance sends at a time, and an instance never sends
/// after another published a successful answer for the key within the rotation grace window:
/// it takes that answer instead. `send` must be called at most once.
///
/// Errors: the transport error of `send` (as [`Error::Transport`]), a transport error another
/// instance published for the key, or the coordinator's own failure ([`Error::Store`], code
/// `store_error`) — in which case nothing was sent.
pub trait RefreshCoordinator: Send + Sync {
    /// Obtains the response for the refresh identified by `key` (a coalesce key: it names
    /// tokens by hash only).
    fn coordinate(&self, key: &str, send: SendRequest<'_>) -> Result<CoordinatedResponse, Error>;
}

/// Coordinates the refreshes of several instances (async client). The same contract as
/// [`RefreshCoordinator`]; `send` is awaited at most once.
pub trait AsyncRefreshCoordinator: Send + Sync {
    /// Obtains the response for the refresh identified by `key`.
    fn coordinate<'a>(&'a self, key: &'a str, send: SendFuture<'a>) -> CoordinateFuture<'a>;
}

/// The default: no coordination beyond the process. Sends the request.
#[derive(Clone, Copy, Debug, Default)]
pub struct Uncoordinated;

impl RefreshCoordinator for Uncoordinated {
    fn coordinate(&self, _key: &str, send: SendRequest<'_>) -> Result<CoordinatedResponse, Error> {
        Ok(send()?)
    }
}

impl AsyncRefreshCoordinator for Uncoordinated {
    fn coordinate<'a>(&'a self, _key: &'a str, send: SendFuture<'a>) -> CoordinateFuture<'a> {
        Box::pin(async move { Ok(send.await?) })
    }
}

impl<C: RefreshCoordinator + ?Sized> RefreshCoordinator for std::sync::Arc<C> {
    fn coordinate(&self, key: &str, send: SendRequest<'_>) -> Result<CoordinatedResponse, Error> {
        (**self).coordinate(key, send)
    }
}

impl<C: AsyncRefreshCoordinator + ?Sized> AsyncRefreshCoordinator for std::sync::Arc<C> {
    fn coordinate<'a>(&'a self, key: &'a str, send: SendFuture<'a>) -> CoordinateFuture<'a> {
        (**self).coordinate(key, send)
    }
}
