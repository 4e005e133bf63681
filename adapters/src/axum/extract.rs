//! Extractors: the user, the session and access tokens, with the request's store options
//! wired by the layer.

use super::error::{json_error, public_code, status_of, trace_failure};
use super::layer::RequestContext;
use super::{Rejection, no_store, redirect};
use crate::error::Error;
use crate::protocol::access_token::AccessTokenRequest;
use crate::protocol::connection_token::{ConnectionToken, ConnectionTokenRequest};
use crate::protocol::session::UserClaims;
use axum::extract::{FromRequestParts, OptionalFromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Why an extractor or the route guard refused a request.
#[derive(Debug)]
#[non_exhaustive]
pub enum AuthRejection {
    /// No session: the browser is sent to `login_url` (the login route with `returnTo`), or
    /// the client gets 401, per [`Rejection`].
    LoginRequired {
        /// The login route with `returnTo` set to the refused request's path.
        login_url: String,
        /// Redirect (a page) rather than 401 (an API call).
        redirect: bool,
    },
    /// The SDK failed (see [`status_of`] for the answer).
    Failed(Error),
    /// The Auth0 layer is not applied to this route (a programming error: apply
    /// [`Auth0::layer`](super::Auth0::layer) to the router).
    MissingLayer,
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        match self {
            AuthRejection::LoginRequired {
                login_url,
                redirect: true,
            } => redirect(&login_url),
            AuthRejection::LoginRequired {
                redirect: false, ..
            } => {
                let mut response = json_error(StatusCode::UNAUTHORIZED, "login_required");
                no_store(&mut response);
                response
            }
            AuthRejection::Failed(error) => {
                let status = status_of(&error);
                trace_failure(&error, status, "extractor");
                json_error(status, public_code(&error, status))
            }
            AuthRejection::MissingLayer => {
                #[cfg(feature = "tracing")]
                crate::trace::trace_event!(
                    ::tracing::Level::ERROR,
                    "an auth0 extractor ran without the Auth0 layer: apply `auth0.layer()` to the router"
                );
                json_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error")
            }
        }
    }
}

impl AuthRejection {
    /// The rejection of a request without a session.
    fn login_required(context: &RequestContext, parts: &Parts) -> AuthRejection {
        let settings = &context.settings;
        // The full path even inside a nested router.
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(&parts.uri, |o| &o.0);
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut login_url = settings.paths.login.clone();
        if super::safe_return_to(path).is_some() {
            login_url.push_str("?returnTo=");
            login_url.extend(url::form_urlencoded::byte_serialize(path.as_bytes()));
        }
        let wants_html = || {
            parts
                .headers
                .get_all(header::ACCEPT)
                .iter()
                .any(|v| v.to_str().is_ok_and(|v| v.contains("text/html")))
        };
        let redirect = match settings.rejection {
            Rejection::RedirectToLogin => true,
            Rejection::Unauthorized => false,
            Rejection::Auto => wants_html(),
        };
        AuthRejection::LoginRequired {
            login_url,
            redirect,
        }
    }

    /// The user, or the rejection.
    pub(crate) async fn require_user(
        context: &RequestContext,
        parts: &Parts,
    ) -> Result<UserClaims, AuthRejection> {
        let mut cookies = context.cookies.lock().await;
        match context.access.get_user(&mut cookies).await {
            Ok(Some(user)) => Ok(user),
            Ok(None) => Err(AuthRejection::login_required(context, parts)),
            Err(e) => Err(AuthRejection::Failed(e)),
        }
    }

    /// The rejection for an access-token failure: no session (or one that can no longer get
    /// tokens) asks for a login, anything else is a failure.
    fn from_token_error(context: &RequestContext, parts: &Parts, error: Error) -> AuthRejection {
        if status_of(&error) == StatusCode::UNAUTHORIZED {
            trace_failure(&error, StatusCode::UNAUTHORIZED, "extractor");
            AuthRejection::login_required(context, parts)
        } else {
            AuthRejection::Failed(error)
        }
    }
}

fn context(parts: &Parts) -> Result<RequestContext, AuthRejection> {
    parts
        .extensions
        .get::<RequestContext>()
        .cloned()
        .ok_or(AuthRejection::MissingLayer)
}

/// The logged-in user's claims (from the ID token). Rejects without a session; use
/// `Option<User>` for pages that work either way.
#[derive(Clone, Debug)]
pub struct User(pub UserClaims);

impl User {
    /// A string claim (`name`, `email`, `sub`, …).
    pub fn claim(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.as_str())
    }

    /// The user id (`sub`).
    pub fn sub(&self) -> &str {
        self.claim("sub").unwrap_or_default()
    }
}

impl<St: Send + Sync> FromRequestParts<St> for User {
    type Rejection = AuthRejection;
    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, Self::Rejection> {
        let context = context(parts)?;
        AuthRejection::require_user(&context, parts).await.map(User)
    }
}

impl<St: Send + Sync> OptionalFromRequestParts<St> for User {
    type Rejection = AuthRejection;
    async fn from_request_parts(
        parts: &mut Parts,
        _: &St,
    ) -> Result<Option<Self>, Self::Rejection> {
        let context = context(parts)?;
        let mut cookies = context.cookies.lock().await;
        match context.access.get_user(&mut cookies).await {
            Ok(user) => Ok(user.map(User)),
            Err(e) => Err(AuthRejection::Failed(e)),
        }
    }
}

/// The session (user, tokens), without SDK-internal data. Rejects without a session.
#[derive(Clone, Debug)]
pub struct Session(pub crate::protocol::session::Session);

impl<St: Send + Sync> FromRequestParts<St> for Session {
    type Rejection = AuthRejection;
    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, Self::Rejection> {
        let context = context(parts)?;
        let mut cookies = context.cookies.lock().await;
        match context.access.get_session(&mut cookies).await {
            Ok(Some(session)) => Ok(Session(session)),
            Ok(None) => Err(AuthRejection::login_required(&context, parts)),
            Err(e) => Err(AuthRejection::Failed(e)),
        }
    }
}

impl<St: Send + Sync> OptionalFromRequestParts<St> for Session {
    type Rejection = AuthRejection;
    async fn from_request_parts(
        parts: &mut Parts,
        _: &St,
    ) -> Result<Option<Self>, Self::Rejection> {
        let context = context(parts)?;
        let mut cookies = context.cookies.lock().await;
        match context.access.get_session(&mut cookies).await {
            Ok(session) => Ok(session.map(Session)),
            Err(e) => Err(AuthRejection::Failed(e)),
        }
    }
}

/// An access token for the default audience: the stored one while valid, else a refreshed one
/// (the rotated refresh token reaches the session cookie through the layer). Rejects without
/// a session, or when the session can no longer get one (log in again).
#[derive(Clone, Debug)]
pub struct AccessToken(pub crate::AccessToken);

impl AccessToken {
    /// The token, for an `Authorization: Bearer` header — unless `self.0.token_type` is
    /// `DPoP` (a client configured with DPoP): then present it with the client's
    /// `dpop_headers`, never as a bearer token.
    pub fn expose(&self) -> &str {
        self.0.access_token.expose()
    }
}

impl<St: Send + Sync> FromRequestParts<St> for AccessToken {
    type Rejection = AuthRejection;
    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, Self::Rejection> {
        let context = context(parts)?;
        let mut cookies = context.cookies.lock().await;
        match context
            .access
            .get_access_token_with(AccessTokenRequest::default(), &mut cookies)
            .await
        {
            Ok(token) => Ok(AccessToken(token)),
            Err(e) => Err(AuthRejection::from_token_error(&context, parts, e)),
        }
    }
}

/// Access tokens on demand in a handler — any audience and scope (Multi-Resource Refresh
/// Tokens), or a federated connection's token — with the request's store options wired, so
/// what the refresh writes reaches the response.
#[derive(Clone)]
pub struct Tokens {
    context: RequestContext,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").finish_non_exhaustive()
    }
}

impl Tokens {
    /// The default audience's token (see [`AccessToken`]).
    ///
    /// # Errors
    /// As [`ServerClient::get_access_token`](crate::nonblocking::ServerClient::get_access_token);
    /// `?` in a handler answers with [`status_of`].
    pub async fn get_access_token(&self) -> Result<crate::AccessToken, Error> {
        self.get_access_token_with(AccessTokenRequest::default())
            .await
    }

    /// A token for an audience and extra scopes.
    ///
    /// # Errors
    /// As [`ServerClient::get_access_token_with`](crate::nonblocking::ServerClient::get_access_token_with).
    pub async fn get_access_token_with(
        &self,
        request: AccessTokenRequest,
    ) -> Result<crate::AccessToken, Error> {
        let mut cookies = self.context.cookies.lock().await;
        self.context
            .access
            .get_access_token_with(request, &mut cookies)
            .await
    }

    /// A federated connection's token (token vault).
    ///
    /// # Errors
    /// As [`ServerClient::get_access_token_for_connection`](crate::nonblocking::ServerClient::get_access_token_for_connection).
    pub async fn get_access_token_for_connection(
        &self,
        request: ConnectionTokenRequest,
    ) -> Result<ConnectionToken, Error> {
        let mut cookies = self.context.cookies.lock().await;
        self.context
            .access
            .get_access_token_for_connection(request, &mut cookies)
            .await
    }

    /// The user, or `None` without a session.
    ///
    /// # Errors
    /// When the session store fails.
    pub async fn get_user(&self) -> Result<Option<UserClaims>, Error> {
        let mut cookies = self.context.cookies.lock().await;
        self.context.access.get_user(&mut cookies).await
    }
}

impl<St: Send + Sync> FromRequestParts<St> for Tokens {
    type Rejection = AuthRejection;
    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, Self::Rejection> {
        Ok(Tokens {
            context: context(parts)?,
        })
    }
}
