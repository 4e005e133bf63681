//! The async client: [`ServerClient`] drives the protocol core's operations over an
//! [`HttpClient`] the application implements for the HTTP client of its runtime
//! (or the shipped [`ReqwestClient`](crate::http), feature `reqwest`). The SDK itself depends on no async runtime: single-flight waiting is
//! built on std mutexes and wakers.
//!
//! An [`HttpClient`] for `reqwest` is a few lines (timeouts belong to the client):
//!
//! ```ignore
//! struct Reqwest(reqwest::Client);
//!
//! impl auth0_server::nonblocking::HttpClient for Reqwest {
//!     async fn send(&self, request: http::Request<Vec<u8>>)
//!         -> Result<http::Response<Vec<u8>>, auth0_server::TransportError>
//!     {
//!         use auth0_server::{TransportError, TransportErrorKind};
//!         let fail = |e: reqwest::Error| {
//!             let kind = if e.is_timeout() { TransportErrorKind::Timeout }
//!                 else if e.is_connect() { TransportErrorKind::Connect }
//!                 else { TransportErrorKind::Io };
//!             TransportError::for_request(&request, kind, "request failed")
//!         };
//!         let response = self.0.execute(request.clone().try_into().map_err(fail)?).await.map_err(fail)?;
//!         let mut out = http::Response::builder().status(response.status());
//!         for (name, value) in response.headers() { out = out.header(name, value); }
//!         let body = response.bytes().await.map_err(fail)?;
//!         out.body(body.to_vec()).map_err(|_| TransportError::for_request(&request, TransportErrorKind::Io, "bad response"))
//!     }
//! }
//! ```
//!
//! Cancellation is safe: dropping a call's future while it leads a shared refresh lets one of
//! the calls waiting on it take over.

use crate::clock::Clock;
use crate::coordinator::{AsyncRefreshCoordinator, Coordinated, CoordinatedResponse};
use crate::driver::{DEFAULT_ROTATION_GRACE, Shared, http_input};
use crate::error::{Error, TransportError};
use crate::single_flight::{Acquire, SharedResponse};
use crate::store::{AsyncStateStore, AsyncTransactionStore};
use auth0_server_protocol::Core;
use auth0_server_protocol::access_token::{AccessToken, AccessTokenRequest};
use auth0_server_protocol::config::Config;
use auth0_server_protocol::connection_token::{ConnectionToken, ConnectionTokenRequest};
use auth0_server_protocol::effect::LogoutTokenClaims;
use auth0_server_protocol::effect::{Effect, HttpRequest, Input, Operation, Step, UnexpectedInput};
use auth0_server_protocol::login::{LoginResult, StartLoginOptions};
use auth0_server_protocol::logout::LogoutOptions;
use auth0_server_protocol::session::{Session, UserClaims};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The HTTP client the async [`ServerClient`] sends requests with.
///
/// Return any HTTP status as a response (the core reads OAuth errors from 4xx bodies); return
/// a [`TransportError`] only when no response was received (timeout, connection failure), or
/// when the body is too large. Do not follow redirects. Apply your own timeouts and a body
/// size limit (1 MiB is plenty).
pub trait HttpClient: Send + Sync {
    /// Sends the request and reads the whole response.
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> impl Future<Output = Result<http::Response<Vec<u8>>, TransportError>> + Send;
}

impl<H: HttpClient> HttpClient for Arc<H> {
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> impl Future<Output = Result<http::Response<Vec<u8>>, TransportError>> + Send {
        (**self).send(request)
    }
}

/// The async Auth0 server client. Cheap to clone (shared state behind an `Arc`).
///
/// Every method takes the caller's `store_options` and hands them unchanged to every store
/// call. The futures are `Send`, so handlers can run on any multi-threaded executor.
pub struct ServerClient<S, T, H> {
    inner: Arc<Inner<S, T, H>>,
}

struct Inner<S, T, H> {
    shared: Shared,
    state_store: S,
    transaction_store: T,
    http: H,
    coordinator: Option<Arc<dyn AsyncRefreshCoordinator>>,
}

impl<S, T, H> Clone for ServerClient<S, T, H> {
    fn clone(&self) -> Self {
        ServerClient {
            inner: self.inner.clone(),
        }
    }
}

impl<S, T, H> std::fmt::Debug for ServerClient<S, T, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerClient")
            .field("domain", &self.inner.shared.core.config().origin())
            .field("client_id", &self.inner.shared.core.config().client_id())
            .finish_non_exhaustive()
    }
}

/// Builds an async [`ServerClient`]; see [`ServerClient::builder`].
pub struct ServerClientBuilder<S, T, H> {
    config: Config,
    state_store: S,
    transaction_store: T,
    http: H,
    clock: Clock,
    rotation_grace: Duration,
    coordinator: Option<Arc<dyn AsyncRefreshCoordinator>>,
}

impl<S, T, H> ServerClientBuilder<S, T, H> {
    /// Coordinates refreshes with the application's other instances (default: none, the
    /// in-process single-flight only), e.g. an
    /// `store::redis::AsyncRedisRefreshCoordinator` (feature `redis-tokio`). It is asked
    /// by the in-process leader of each refresh, and of each request that spends a refresh
    /// token (the connection exchange too); see [`crate::coordinator`].
    pub fn coordinator(mut self, coordinator: impl AsyncRefreshCoordinator + 'static) -> Self {
        self.coordinator = Some(Arc::new(coordinator));
        self
    }

    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// How long a successful refresh response is remembered and handed to requests that
    /// still carry the rotated-away refresh token (default 60 s; zero disables it).
    pub fn rotation_grace(mut self, window: Duration) -> Self {
        self.rotation_grace = window;
        self
    }

    /// The client.
    pub fn build(self) -> ServerClient<S, T, H> {
        ServerClient {
            inner: Arc::new(Inner {
                shared: Shared::new(Core::new(self.config), self.clock, self.rotation_grace),
                state_store: self.state_store,
                transaction_store: self.transaction_store,
                http: self.http,
                coordinator: self.coordinator,
            }),
        }
    }
}

impl<S, T, H> ServerClient<S, T, H>
where
    S: AsyncStateStore,
    T: AsyncTransactionStore<Options = S::Options>,
    H: HttpClient,
{
    /// A builder from a validated configuration, the two stores and the HTTP client.
    pub fn builder(
        config: Config,
        state_store: S,
        transaction_store: T,
        http: H,
    ) -> ServerClientBuilder<S, T, H> {
        ServerClientBuilder {
            config,
            state_store,
            transaction_store,
            http,
            clock: Clock::system(),
            rotation_grace: DEFAULT_ROTATION_GRACE,
            coordinator: None,
        }
    }

    /// The protocol core (configuration, and the operations this client drives).
    pub fn core(&self) -> &Core {
        &self.inner.shared.core
    }

    /// The state store.
    pub fn state_store(&self) -> &S {
        &self.inner.state_store
    }

    /// The transaction store.
    pub fn transaction_store(&self) -> &T {
        &self.inner.transaction_store
    }

    /// The HTTP client.
    pub fn http_client(&self) -> &H {
        &self.inner.http
    }

    /// The logged-in user's claims, or `None` without a session.
    pub async fn get_user(
        &self,
        store_options: &mut S::Options,
    ) -> Result<Option<UserClaims>, Error> {
        self.drive(self.core().get_user(), store_options).await
    }

    /// The session (without SDK-internal data), or `None`.
    pub async fn get_session(
        &self,
        store_options: &mut S::Options,
    ) -> Result<Option<Session>, Error> {
        self.drive(self.core().get_session(), store_options).await
    }

    /// An access token for the default audience and scope: the stored one while valid, else
    /// a refreshed one (saved to the session).
    pub async fn get_access_token(
        &self,
        store_options: &mut S::Options,
    ) -> Result<AccessToken, Error> {
        self.get_access_token_with(AccessTokenRequest::default(), store_options)
            .await
    }

    /// An access token for an audience and extra scopes (Multi-Resource Refresh Tokens).
    pub async fn get_access_token_with(
        &self,
        request: AccessTokenRequest,
        store_options: &mut S::Options,
    ) -> Result<AccessToken, Error> {
        self.drive(self.core().get_access_token(request), store_options)
            .await
    }

    /// An access token for a federated connection (token vault).
    pub async fn get_access_token_for_connection(
        &self,
        request: ConnectionTokenRequest,
        store_options: &mut S::Options,
    ) -> Result<ConnectionToken, Error> {
        self.drive(
            self.core().get_access_token_for_connection(request),
            store_options,
        )
        .await
    }

    /// Starts an interactive login: saves the transaction (PKCE verifier, `state`, `nonce`,
    /// `app_state`) and returns the authorization URL to redirect the browser to.
    pub async fn start_interactive_login(
        &self,
        options: StartLoginOptions,
        store_options: &mut S::Options,
    ) -> Result<url::Url, Error> {
        self.drive(self.core().start_interactive_login(options), store_options)
            .await
    }

    /// Completes an interactive login from the callback URL Auth0 redirected to (absolute, or
    /// path and query): checks `state`, exchanges the code, verifies the ID token, saves the
    /// session, deletes the transaction, and returns `app_state` and `authorization_details`.
    pub async fn complete_interactive_login(
        &self,
        callback_url: &str,
        store_options: &mut S::Options,
    ) -> Result<LoginResult, Error> {
        self.drive(
            self.core().complete_interactive_login(callback_url),
            store_options,
        )
        .await
    }

    /// Deletes the session and returns the Auth0 logout URL to redirect the browser to.
    pub async fn logout(
        &self,
        options: LogoutOptions,
        store_options: &mut S::Options,
    ) -> Result<url::Url, Error> {
        self.drive(self.core().logout(options), store_options).await
    }

    /// Handles a back-channel logout request: verifies the logout token and deletes the
    /// matching sessions through the state store's `delete_by_logout_token`.
    pub async fn handle_backchannel_logout(
        &self,
        logout_token: &str,
        store_options: &mut S::Options,
    ) -> Result<LogoutTokenClaims, Error> {
        self.drive(
            self.core().handle_backchannel_logout(logout_token),
            store_options,
        )
        .await
    }

    /// Runs any core operation to completion: the one place this client performs effects
    /// (HTTP with single-flight, stores, caches, randomness). `store_options` reach every
    /// store call unchanged.
    pub async fn drive<O>(
        &self,
        mut op: O,
        store_options: &mut S::Options,
    ) -> Result<O::Output, Error>
    where
        O: Operation + Send,
        Error: From<O::Error>,
    {
        let inner = &*self.inner;
        let mut input = Input::Start;
        let mut now = inner.shared.clock.now();
        loop {
            let effect = match op.step(input, now) {
                Step::Done(result) => return result.map_err(Error::from),
                Step::Effect(effect) => effect,
            };
            now = inner.shared.clock.now();
            input = match effect {
                Effect::Http(request) => {
                    let (input, observed_at) = self.http(*request).await?;
                    now = observed_at;
                    input
                }
                Effect::LoadSession => Input::Session(inner.state_store.get(store_options).await?),
                Effect::SaveSession(state) => {
                    inner.state_store.set(&state, store_options).await?;
                    Input::Done
                }
                Effect::DeleteSession => {
                    inner.state_store.delete(store_options).await?;
                    Input::Done
                }
                Effect::DeleteSessionsByLogoutToken(claims) => {
                    inner
                        .state_store
                        .delete_by_logout_token(&claims, store_options)
                        .await?;
                    Input::Done
                }
                Effect::LoadTransaction { key } => {
                    Input::Transaction(inner.transaction_store.get(&key, store_options).await?)
                }
                Effect::SaveTransaction { key, transaction } => {
                    inner
                        .transaction_store
                        .set(&key, &transaction, store_options)
                        .await?;
                    Input::Done
                }
                Effect::DeleteTransaction { key } => {
                    inner.transaction_store.delete(&key, store_options).await?;
                    Input::Done
                }
                local => inner.shared.perform_local(local)?,
            };
        }
    }

    /// Sends a request, single-flight when the core marked it shareable. Returns the response
    /// and the time it was received.
    async fn http(&self, request: HttpRequest) -> Result<(Input, u64), Error> {
        let shared = &self.inner.shared;
        let Some(coalesce) = request.coalesce else {
            let response = self.inner.http.send(request.request).await?;
            return Ok((Input::Http(response), shared.clock.now()));
        };
        let mut request = Some(request.request);
        loop {
            let now = shared.clock.now();
            let lane = coalesce.lane.as_deref();
            match shared
                .flights
                .acquire_on(&coalesce.key, coalesce.remember, lane, now)
            {
                Acquire::Remembered(r) => return Ok(http_input(r)),
                // Another request spends the same refresh token: once it is done, look again
                // (its answer may have rotated the token).
                Acquire::WaitLane(waiter) => {
                    waiter.wait_async().await;
                    continue;
                }
                Acquire::Rotated(rotated_to) => return Ok((Input::Rotated(rotated_to), now)),
                Acquire::Wait(waiter) => match waiter.wait_async().await {
                    Some(result) => return Ok(http_input(result?)),
                    None => continue, // the leader was cancelled: try again, maybe as leader
                },
                Acquire::Lead(leader) => {
                    let Some(request) = request.take() else {
                        return Err(UnexpectedInput {
                            expected: "one request per flight",
                        }
                        .into());
                    };
                    // If this future is dropped here, `leader` drops: the waiters take over.
                    let result = match &self.inner.coordinator {
                        // Remembered refreshes, and every request that spends a refresh token
                        // (a lane): another instance may be spending it, or have rotated it.
                        Some(coordinator) if coalesce.remember || coalesce.lane.is_some() => {
                            let send = Box::pin(async move {
                                let response = self.inner.http.send(request).await?;
                                Ok(CoordinatedResponse {
                                    response,
                                    received_at: shared.clock.now(),
                                })
                            });
                            match coordinator.coordinate(&coalesce, send).await {
                                Ok(Coordinated::Response(r)) => {
                                    Ok(SharedResponse::new(r.response, r.received_at))
                                }
                                // Another instance spent this lane's refresh token and it was
                                // rotated; nothing was sent. `leader` drops without recording
                                // a rotation in-process: each local waiter asks again, and
                                // those whose key another instance answered get that answer.
                                Ok(Coordinated::Rotated(rotated_to)) => {
                                    return Ok((Input::Rotated(rotated_to), now));
                                }
                                Err(Error::Transport(e)) => Err(e),
                                // The coordinator failed (nothing was sent): `leader` drops,
                                // and each local waiter tries again itself.
                                Err(e) => return Err(e),
                            }
                        }
                        _ => self
                            .inner
                            .http
                            .send(request)
                            .await
                            .map(|r| SharedResponse::new(r, shared.clock.now())),
                    };
                    leader.complete(result.clone());
                    return Ok(http_input(result?));
                }
            }
        }
    }
}
