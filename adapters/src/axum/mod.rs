//! The axum integration (feature `axum`): mounted auth routes, a tower layer that owns the
//! session cookies, extractors, and `IntoResponse` for the SDK's [`Error`].
//!
//! ```ignore
//! use auth0_server::axum::{Auth0, User};
//!
//! let auth0 = Auth0::from_env(my_http_client)?; // AUTH0_DOMAIN, AUTH0_CLIENT_ID, …
//! let app = axum::Router::new()
//!     .route("/", axum::routing::get(|user: Option<User>| async move { /* … */ }))
//!     .merge(auth0.router())   // /auth/login, /auth/callback, /auth/logout, …
//!     .layer(auth0.layer());   // request cookies in, every Set-Cookie out
//! ```
//!
//! - [`Auth0`] is built from a [`ServerClient`] ([`Auth0::builder`]) or from the environment
//!   ([`Auth0::from_env`], the variable names of Auth0's Next.js SDK).
//! - [`Auth0::router`] serves `GET /auth/login` (`?returnTo=/path`, a same-origin path only:
//!   see [`safe_return_to`]), `GET /auth/callback`, `GET /auth/logout`,
//!   `POST /auth/backchannel-logout`, `GET /auth/profile` (the user as JSON, 401 without a
//!   session) and, when enabled, `GET /auth/access-token`. Paths are configurable
//!   ([`AuthPaths`], [`Auth0Builder::prefix`]); hooks run after a login
//!   ([`Auth0Builder::after_login`]) and on a failure ([`Auth0Builder::on_error`]).
//! - [`Auth0::layer`] reads the request's cookies into the stores' options and writes every
//!   `Set-Cookie` the stores produced onto the response, whatever the handler returned — a
//!   rotated refresh token or a rolled session can no longer be lost. It works with every
//!   store whose options are [`CookieOptions`] (memory, encrypted cookie, Redis).
//! - Extractors: [`User`], `Option<User>`, [`Session`], [`AccessToken`] (default audience),
//!   and [`Tokens`] (any audience, connection tokens) — with the request's store options
//!   wired. Without a session they reject with [`AuthRejection`]: a redirect to the login
//!   route with `returnTo` for pages, 401 for API calls ([`Rejection`]).
//! - [`Auth0::require_session`]: a route guard layer ("everything under `/app` needs a
//!   session").
//!
//! Every route answer and every rejection carries `Cache-Control: no-store` when it sets
//! cookies or shows user data.

mod env;
mod error;
mod extract;
mod layer;
mod return_to;
mod routes;

pub use env::{EnvConfig, EnvError};
pub use error::status_of;
pub use extract::{AccessToken, AuthRejection, Session, Tokens, User};
pub use layer::{Auth0Layer, Auth0Service};
pub use return_to::{MAX_RETURN_TO, safe_return_to};
pub use routes::{AuthPaths, AuthRoute, LoggedIn, RouteFailure};

use crate::error::Error;
use crate::nonblocking::{HttpClient, ServerClient};
use crate::protocol::access_token::AccessTokenRequest;
use crate::protocol::connection_token::{ConnectionToken, ConnectionTokenRequest};
use crate::protocol::session::UserClaims;
use crate::store::{AsyncStateStore, AsyncTransactionStore, CookieOptions};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed `Send` future.
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What happens when a request needs a session and has none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// Browsers navigating to a page (`Accept: text/html`) are redirected to the login route
    /// with `returnTo` set to the page; everything else gets 401 (the default).
    #[default]
    Auto,
    /// Always redirect to the login route with `returnTo`.
    RedirectToLogin,
    /// Always answer 401 with `{"error": "login_required"}`.
    Unauthorized,
}

/// Called after a successful login with the user; returns `None` to continue to `returnTo`, or
/// the response to send instead.
type AfterLoginHook = Arc<dyn Fn(LoggedIn) -> BoxFuture<'static, Option<Response>> + Send + Sync>;
/// Called when an auth route fails; returns `None` for the default answer.
type OnErrorHook = Arc<dyn Fn(&RouteFailure<'_>) -> Option<Response> + Send + Sync>;

/// The settings of the routes, the layer and the extractors.
pub(crate) struct Settings {
    /// The application's base URL, without a trailing `/`.
    base_url: String,
    /// The routes' paths, prefix included.
    paths: AuthPaths,
    access_token_route: bool,
    default_return_to: String,
    logout_return_to: String,
    rejection: Rejection,
    after_login: Option<AfterLoginHook>,
    on_error: Option<OnErrorHook>,
}

/// The axum integration's handle: the client plus the routes' settings. Cheap to clone.
///
/// `S` and `T` are the state and transaction stores (any whose options are
/// [`CookieOptions`]), `H` the async client's [`HttpClient`].
pub struct Auth0<S, T, H> {
    client: ServerClient<S, T, H>,
    settings: Arc<Settings>,
}

impl<S, T, H> Clone for Auth0<S, T, H> {
    fn clone(&self) -> Self {
        Auth0 {
            client: self.client.clone(),
            settings: self.settings.clone(),
        }
    }
}

impl<S, T, H> std::fmt::Debug for Auth0<S, T, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth0")
            .field("client", &self.client)
            .field("base_url", &self.settings.base_url)
            .field("paths", &self.settings.paths)
            .finish_non_exhaustive()
    }
}

/// Builds an [`Auth0`]; see [`Auth0::builder`].
pub struct Auth0Builder<S, T, H> {
    client: ServerClient<S, T, H>,
    base_url: String,
    prefix: String,
    paths: AuthPaths,
    access_token_route: bool,
    default_return_to: String,
    logout_return_to: Option<String>,
    rejection: Rejection,
    after_login: Option<AfterLoginHook>,
    on_error: Option<OnErrorHook>,
}

impl<S, T, H> std::fmt::Debug for Auth0Builder<S, T, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth0Builder")
            .field("base_url", &self.base_url)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl<S, T, H> Auth0Builder<S, T, H>
where
    S: AsyncStateStore<Options = CookieOptions> + 'static,
    T: AsyncTransactionStore<Options = CookieOptions> + 'static,
    H: HttpClient + 'static,
{
    /// Serves the routes under `prefix` (e.g. `/account` gives `/account/auth/login`); the
    /// callback URL sent to Auth0 includes it. Use it instead of `Router::nest`, which the
    /// routes could not see.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into().trim_end_matches('/').to_owned();
        self
    }

    /// The routes' paths (default [`AuthPaths::default`], `/auth/…`).
    pub fn paths(mut self, paths: AuthPaths) -> Self {
        self.paths = paths;
        self
    }

    /// Serves `GET /auth/access-token` (JSON `{token, scope, expires_at}` for the default
    /// audience) for browser code that calls APIs itself. Off by default: it hands the access
    /// token to JavaScript.
    pub fn access_token_route(mut self, enabled: bool) -> Self {
        self.access_token_route = enabled;
        self
    }

    /// Where a login without a (valid) `returnTo` lands (default `/`). Must pass
    /// [`safe_return_to`], else `/` is kept.
    pub fn default_return_to(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        if safe_return_to(&path).is_some() {
            self.default_return_to = path;
        }
        self
    }

    /// Where Auth0 sends the browser after logout (absolute; default the base URL + `/`; it
    /// must be an Allowed Logout URL of the application).
    pub fn logout_return_to(mut self, url: impl Into<String>) -> Self {
        self.logout_return_to = Some(url.into());
        self
    }

    /// What extractors and the route guard do without a session (default [`Rejection::Auto`]).
    pub fn rejection(mut self, rejection: Rejection) -> Self {
        self.rejection = rejection;
        self
    }

    /// Runs after each successful login, before the redirect to `returnTo` (e.g. to provision
    /// the user in the application's database). Return `None` to continue, or a response to
    /// send instead (the session cookie is set on it all the same).
    pub fn after_login<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(LoggedIn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<Response>> + Send + 'static,
    {
        self.after_login = Some(Arc::new(move |logged_in| Box::pin(hook(logged_in))));
        self
    }

    /// Renders failures of the auth routes (a bad callback, Auth0 unreachable, …): return
    /// `None` for the default JSON answer. Cookies the stores wrote are still set.
    pub fn on_error<F>(mut self, hook: F) -> Self
    where
        F: Fn(&RouteFailure<'_>) -> Option<Response> + Send + Sync + 'static,
    {
        self.on_error = Some(Arc::new(hook));
        self
    }

    /// The [`Auth0`].
    pub fn build(self) -> Auth0<S, T, H> {
        let base_url = self.base_url.trim_end_matches('/').to_owned();
        let logout_return_to = self
            .logout_return_to
            .unwrap_or_else(|| format!("{base_url}/"));
        Auth0 {
            client: self.client,
            settings: Arc::new(Settings {
                paths: self.paths.with_prefix(&self.prefix),
                base_url,
                access_token_route: self.access_token_route,
                default_return_to: self.default_return_to,
                logout_return_to,
                rejection: self.rejection,
                after_login: self.after_login,
                on_error: self.on_error,
            }),
        }
    }
}

impl<S, T, H> Auth0<S, T, H>
where
    S: AsyncStateStore<Options = CookieOptions> + 'static,
    T: AsyncTransactionStore<Options = CookieOptions> + 'static,
    H: HttpClient + 'static,
{
    /// A builder for the app served at `app_base_url` (`https://app.example.com`), with the
    /// client the routes and extractors use. The login route sends
    /// `app_base_url` + the callback path as `redirect_uri` (register it as an Allowed
    /// Callback URL).
    pub fn builder(
        client: ServerClient<S, T, H>,
        app_base_url: impl Into<String>,
    ) -> Auth0Builder<S, T, H> {
        Auth0Builder {
            client,
            base_url: app_base_url.into(),
            prefix: String::new(),
            paths: AuthPaths::default(),
            access_token_route: false,
            default_return_to: "/".to_owned(),
            logout_return_to: None,
            rejection: Rejection::default(),
            after_login: None,
            on_error: None,
        }
    }

    /// The client.
    pub fn client(&self) -> &ServerClient<S, T, H> {
        &self.client
    }

    /// The routes' paths (prefix included).
    pub fn paths(&self) -> &AuthPaths {
        &self.settings.paths
    }

    /// The layer that owns the cookies and makes the extractors work: apply it to the whole
    /// app (`Router::layer`). Applying it twice is harmless (the outer one owns the cookies).
    pub fn layer(&self) -> Auth0Layer {
        Auth0Layer::new(self.access(), self.settings.clone(), false)
    }

    /// A route guard: the layer of [`Auth0::layer`] that also refuses requests without a
    /// session ([`Rejection`]), e.g. `Router::new().nest("/app", app).route_layer(
    /// auth0.require_session())`.
    pub fn require_session(&self) -> Auth0Layer {
        Auth0Layer::new(self.access(), self.settings.clone(), true)
    }

    fn access(&self) -> Arc<dyn Access> {
        Arc::new(self.client.clone())
    }
}

/// The client's session operations, with the stores' types erased, for the layer and the
/// extractors (which do not know `S`, `T`, `H`).
pub(crate) trait Access: Send + Sync {
    fn get_user<'a>(
        &'a self,
        options: &'a mut CookieOptions,
    ) -> BoxFuture<'a, Result<Option<UserClaims>, Error>>;
    fn get_session<'a>(
        &'a self,
        options: &'a mut CookieOptions,
    ) -> BoxFuture<'a, Result<Option<crate::protocol::session::Session>, Error>>;
    fn get_access_token_with<'a>(
        &'a self,
        request: AccessTokenRequest,
        options: &'a mut CookieOptions,
    ) -> BoxFuture<'a, Result<crate::AccessToken, Error>>;
    fn get_access_token_for_connection<'a>(
        &'a self,
        request: ConnectionTokenRequest,
        options: &'a mut CookieOptions,
    ) -> BoxFuture<'a, Result<ConnectionToken, Error>>;
}

impl<S, T, H> Access for ServerClient<S, T, H>
where
    S: AsyncStateStore<Options = CookieOptions> + 'static,
    T: AsyncTransactionStore<Options = CookieOptions> + 'static,
    H: HttpClient + 'static,
{
    fn get_user<'a>(
        &'a self,
        options: &'a mut CookieOptions,
    ) -> BoxFuture<'a, Result<Option<UserClaims>, Error>> {
        Box::pin(ServerClient::get_user(self, options))
    }
    fn get_session<'a>(
        &'a self,
        options: &'a mut CookieOptions,
    ) -> BoxFuture<'a, Result<Option<crate::protocol::session::Session>, Error>> {
        Box::pin(ServerClient::get_session(self, options))
    }
    fn get_access_token_with<'a>(
        &'a self,
        request: AccessTokenRequest,
        options: &'a mut CookieOptions,
    ) -> BoxFuture<'a, Result<crate::AccessToken, Error>> {
        Box::pin(ServerClient::get_access_token_with(self, request, options))
    }
    fn get_access_token_for_connection<'a>(
        &'a self,
        request: ConnectionTokenRequest,
        options: &'a mut CookieOptions,
    ) -> BoxFuture<'a, Result<ConnectionToken, Error>> {
        Box::pin(ServerClient::get_access_token_for_connection(
            self, request, options,
        ))
    }
}

/// A JSON answer with `Cache-Control: no-store`.
pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response();
    no_store(&mut response);
    response
}

/// Marks a response as not cacheable (it sets cookies or shows user data).
pub(crate) fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// A `302 Found` to `location`, not cacheable.
pub(crate) fn redirect(location: &str) -> Response {
    let mut response = match HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::FOUND, [(header::LOCATION, value)]).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    no_store(&mut response);
    response
}

/// The guide's (`docs/axum.md`) examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/axum.md")]
pub struct GuideDoctests;
