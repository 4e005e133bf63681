//! Cross-instance coordination of refreshes, for applications running several instances.
//!
//! Within one process, concurrent refreshes of one refresh token share one request
//! (single-flight), requests that spend one refresh token run one at a time (its *lane*), and
//! a rotated refresh token's answer is remembered for the rotation grace window. Several
//! instances of an application behind a load balancer need the same guarantees *between*
//! processes: with refresh-token rotation and reuse detection, two instances redeeming the
//! same refresh token — for the same audience or for two different ones — make Auth0 revoke
//! the user's whole token family.
//!
//! A [`RefreshCoordinator`] (blocking client) or [`AsyncRefreshCoordinator`] (async client),
//! set with the builders' `.coordinator(...)`, decides how the one in-process leader of a
//! request obtains its outcome: by sending it (`send`, called at most once), by taking the
//! answer another instance published for the same [`Coalesce::key`], or — when another
//! instance already spent the refresh token of the request's [`Coalesce::lane`] and it was
//! rotated — by learning the new refresh token ([`Coordinated::Rotated`]) without sending
//! anything. The driver then answers the operation with [`Input::Rotated`], and the operation
//! asks again, spending the new token (a new lane).
//!
//! It sees the requests the core marks as remembered refreshes ([`Coalesce::remember`]) and
//! every request that spends a refresh token ([`Coalesce::lane`]: refreshes for any audience
//! or scope, and the federated connection exchange); discovery and JWKS fetches are
//! idempotent and stay per-process. Without a coordinator (the default) the leader simply
//! sends.
//!
//! The SDK ships one implementation on Redis:
//! `store::redis::RedisRefreshCoordinator` (feature
//! `redis`) and its async twin (feature `redis-tokio`).
//!
//! [`Coalesce::key`]: auth0_server_protocol::effect::Coalesce::key
//! [`Coalesce::remember`]: auth0_server_protocol::effect::Coalesce::remember
//! [`Coalesce::lane`]: auth0_server_protocol::effect::Coalesce::lane
//! [`Input::Rotated`]: auth0_server_protocol::effect::Input::Rotated

use crate::error::{Error, TransportError};
use auth0_server_protocol::Secret;
use auth0_server_protocol::effect::Coalesce;
use auth0_server_protocol::time::UnixTime;
use std::future::Future;
use std::pin::Pin;

/// A response to a coordinated request, with the time (Unix seconds) it was received — by
/// this instance, or by the instance that sent the request.
#[derive(Debug)]
pub struct CoordinatedResponse {
    /// The response (any status).
    pub response: http::Response<Vec<u8>>,
    /// The instant the answer's lifetimes count from: when the request was sent (a token
    /// cannot have been issued before), not when the answer was read — a flight continued
    /// long after its answer arrived must not take it for fresher than it is. Expiry times
    /// and the grace window are computed from it.
    pub received_at: UnixTime,
}

/// The outcome of coordinating one request.
#[derive(Debug)]
pub enum Coordinated {
    /// The response: received by this instance (`send` was called), or published by the
    /// instance that sent the same request (same [`Coalesce::key`]).
    Response(CoordinatedResponse),
    /// Nothing was sent: another instance spent the refresh token of the request's
    /// [`Coalesce::lane`] (for another key) within the rotation grace window, and its answer
    /// rotated it to this token. Spend this one instead (the driver answers the operation
    /// with [`Input::Rotated`](auth0_server_protocol::effect::Input::Rotated)).
    Rotated(Secret),
}

/// Sends the request this instance holds; called at most once.
pub type SendRequest<'a> = Box<dyn FnOnce() -> Result<CoordinatedResponse, TransportError> + 'a>;

/// The future that sends the request this instance holds; awaited at most once.
pub type SendFuture<'a> =
    Pin<Box<dyn Future<Output = Result<CoordinatedResponse, TransportError>> + Send + 'a>>;

/// The future of [`AsyncRefreshCoordinator::coordinate`].
pub type CoordinateFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Coordinated, Error>> + Send + 'a>>;

/// Coordinates the refreshes of several instances (blocking client).
///
/// Contract, for a request described by `request` (its coalesce key, whether its answer is
/// remembered, and its lane — the hash of the refresh token it spends, if any):
///
/// * at most one instance at a time sends a request of one lane (or, for a request without a
///   lane, of one key);
/// * an instance never sends after another published a successful answer for the same key
///   within the rotation grace window: it takes that answer instead
///   ([`Coordinated::Response`]);
/// * an instance never spends a lane's refresh token after another instance's answer rotated
///   it within the grace window: it returns [`Coordinated::Rotated`] with the new token.
///
/// `send` must be called at most once.
///
/// Errors: the transport error of `send` (as [`Error::Transport`]), a transport error another
/// instance published for the key, or the coordinator's own failure ([`Error::Store`], code
/// `store_error`) — in which case nothing was sent.
pub trait RefreshCoordinator: Send + Sync {
    /// Obtains the outcome of the request described by `request` (its key and lane name
    /// tokens by hash only).
    fn coordinate(&self, request: &Coalesce, send: SendRequest<'_>) -> Result<Coordinated, Error>;
}

/// Coordinates the refreshes of several instances (async client). The same contract as
/// [`RefreshCoordinator`]; `send` is awaited at most once.
pub trait AsyncRefreshCoordinator: Send + Sync {
    /// Obtains the outcome of the request described by `request`.
    fn coordinate<'a>(
        &'a self,
        request: &'a Coalesce,
        send: SendFuture<'a>,
    ) -> CoordinateFuture<'a>;

    /// How to finish a flight whose caller went away, on the runtime this coordinator runs
    /// on, when the application gave the client no spawn hook
    /// ([`spawn_with`](crate::nonblocking::ServerClientBuilder::spawn_with)). A coordinator
    /// that holds a lock for the request it sends needs the flight finished, or the other
    /// instances wait for the lock to expire and then spend the replaced refresh token.
    /// Default: none (the application's hook is the only one).
    fn spawn_hook(&self) -> Option<crate::nonblocking::Spawn> {
        None
    }
}

/// The default: no coordination beyond the process. Sends the request.
#[derive(Clone, Copy, Debug, Default)]
pub struct Uncoordinated;

impl RefreshCoordinator for Uncoordinated {
    fn coordinate(&self, _request: &Coalesce, send: SendRequest<'_>) -> Result<Coordinated, Error> {
        Ok(Coordinated::Response(send()?))
    }
}

impl AsyncRefreshCoordinator for Uncoordinated {
    fn coordinate<'a>(
        &'a self,
        _request: &'a Coalesce,
        send: SendFuture<'a>,
    ) -> CoordinateFuture<'a> {
        Box::pin(async move { Ok(Coordinated::Response(send.await?)) })
    }
}

impl<C: RefreshCoordinator + ?Sized> RefreshCoordinator for std::sync::Arc<C> {
    fn coordinate(&self, request: &Coalesce, send: SendRequest<'_>) -> Result<Coordinated, Error> {
        (**self).coordinate(request, send)
    }
}

impl<C: AsyncRefreshCoordinator + ?Sized> AsyncRefreshCoordinator for std::sync::Arc<C> {
    fn coordinate<'a>(
        &'a self,
        request: &'a Coalesce,
        send: SendFuture<'a>,
    ) -> CoordinateFuture<'a> {
        (**self).coordinate(request, send)
    }

    fn spawn_hook(&self) -> Option<crate::nonblocking::Spawn> {
        (**self).spawn_hook()
    }
}
