//! The mounted auth routes: login, callback, logout, back-channel logout, profile, access
//! token.

use super::error::{json_error, public_code, status_of, trace_failure};
use super::layer::RequestContext;
use super::{Auth0, json, redirect, safe_return_to};
use crate::error::Error;
use crate::nonblocking::HttpClient;
use crate::protocol::session::UserClaims;
use crate::store::{AsyncStateStore, AsyncTransactionStore, CookieOptions};
use crate::{LogoutOptions, StartLoginOptions};
use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};

/// The largest back-channel logout request body read (a logout token is ~1 KiB).
const MAX_BACKCHANNEL_BODY: usize = 64 * 1024;

/// The paths of the auth routes (before [`Auth0Builder::prefix`](super::Auth0Builder::prefix)).
///
/// ```
/// let mut paths = auth0_server::axum::AuthPaths::default();
/// paths.login = "/signin".into();
/// assert_eq!(paths.callback, "/auth/callback");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthPaths {
    /// `GET`, default `/auth/login`.
    pub login: String,
    /// `GET`, default `/auth/callback` (the `redirect_uri` path).
    pub callback: String,
    /// `GET`, default `/auth/logout`.
    pub logout: String,
    /// `POST`, default `/auth/backchannel-logout`.
    pub backchannel_logout: String,
    /// `GET`, default `/auth/profile`.
    pub profile: String,
    /// `GET`, default `/auth/access-token` (served only when enabled).
    pub access_token: String,
}

impl Default for AuthPaths {
    fn default() -> Self {
        AuthPaths {
            login: "/auth/login".into(),
            callback: "/auth/callback".into(),
            logout: "/auth/logout".into(),
            backchannel_logout: "/auth/backchannel-logout".into(),
            profile: "/auth/profile".into(),
            access_token: "/auth/access-token".into(),
        }
    }
}

impl AuthPaths {
    /// Every path under `prefix`.
    pub(crate) fn with_prefix(mut self, prefix: &str) -> Self {
        for path in [
            &mut self.login,
            &mut self.callback,
            &mut self.logout,
            &mut self.backchannel_logout,
            &mut self.profile,
            &mut self.access_token,
        ] {
            *path = format!("{prefix}{path}");
        }
        self
    }
}

/// Which auth route failed (for [`Auth0Builder::on_error`](super::Auth0Builder::on_error)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthRoute {
    /// `GET /auth/login`.
    Login,
    /// `GET /auth/callback`.
    Callback,
    /// `GET /auth/logout`.
    Logout,
    /// `POST /auth/backchannel-logout`.
    BackchannelLogout,
    /// `GET /auth/profile`.
    Profile,
    /// `GET /auth/access-token`.
    AccessToken,
}

impl AuthRoute {
    fn name(self) -> &'static str {
        match self {
            AuthRoute::Login => "login",
            AuthRoute::Callback => "callback",
            AuthRoute::Logout => "logout",
            AuthRoute::BackchannelLogout => "backchannel_logout",
            AuthRoute::Profile => "profile",
            AuthRoute::AccessToken => "access_token",
        }
    }
}

/// A failure of an auth route, for the `on_error` hook.
#[derive(Debug)]
#[non_exhaustive]
pub struct RouteFailure<'a> {
    /// The route.
    pub route: AuthRoute,
    /// The status of the default answer.
    pub status: StatusCode,
    /// The stable error code (`invalid_state`, `missing_transaction`, `invalid_request`, …).
    pub code: &'static str,
    /// The SDK error, when the failure is one (not for a malformed request).
    pub error: Option<&'a Error>,
}

/// What the `after_login` hook is given.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LoggedIn {
    /// The user's claims.
    pub user: UserClaims,
    /// Where the browser is about to be sent (a same-origin path).
    pub return_to: String,
    /// The `app_state` the login carried.
    pub app_state: Option<serde_json::Value>,
}

impl<S, T, H> Auth0<S, T, H>
where
    S: AsyncStateStore<Options = CookieOptions> + 'static,
    T: AsyncTransactionStore<Options = CookieOptions> + 'static,
    H: HttpClient + 'static,
{
    /// The auth routes, to `merge` into the application's router (they carry the layer
    /// themselves, so they work even where [`Auth0::layer`] is not applied).
    pub fn router<St>(&self) -> Router<St>
    where
        St: Clone + Send + Sync + 'static,
    {
        let paths = &self.settings.paths;
        let a = self.clone();
        let mut router = Router::new()
            .route(&paths.login, get(route(&a, Self::login)))
            .route(&paths.callback, get(route(&a, Self::callback)))
            .route(&paths.logout, get(route(&a, Self::logout)))
            .route(
                &paths.backchannel_logout,
                post(route(&a, Self::backchannel_logout)),
            )
            .route(&paths.profile, get(route(&a, Self::profile)));
        if self.settings.access_token_route {
            router = router.route(&paths.access_token, get(route(&a, Self::access_token)));
        }
        router.route_layer(self.layer())
    }

    /// The answer to a failed route: the `on_error` hook's, or JSON `{"error": code}`.
    fn fail(
        &self,
        route: AuthRoute,
        error: Option<&Error>,
        status: StatusCode,
        code: &'static str,
    ) -> Response {
        if let Some(e) = error {
            trace_failure(e, status, route.name());
        }
        let failure = RouteFailure {
            route,
            status,
            code,
            error,
        };
        if let Some(response) = self
            .settings
            .on_error
            .as_ref()
            .and_then(|hook| hook(&failure))
        {
            return response;
        }
        json_error(status, code)
    }

    fn fail_with(&self, route: AuthRoute, error: &Error) -> Response {
        let status = status_of(error);
        self.fail(route, Some(error), status, public_code(error, status))
    }

    async fn login(self, context: RequestContext, request: Request) -> Response {
        let settings = &self.settings;
        let return_to = query_param(&request, "returnTo")
            .filter(|r| safe_return_to(r).is_some())
            .unwrap_or_else(|| settings.default_return_to.clone());
        let options = StartLoginOptions::new()
            .app_state(serde_json::json!({ "returnTo": return_to }))
            .param(
                "redirect_uri",
                format!("{}{}", settings.base_url, settings.paths.callback),
            );
        let mut cookies = context.cookies.lock().await;
        match self
            .client
            .start_interactive_login(options, &mut cookies)
            .await
        {
            Ok(url) => redirect(url.as_str()),
            Err(e) => self.fail_with(AuthRoute::Login, &e),
        }
    }

    async fn callback(self, context: RequestContext, request: Request) -> Response {
        let settings = &self.settings;
        let url = format!(
            "{}?{}",
            settings.paths.callback,
            request.uri().query().unwrap_or_default()
        );
        let mut cookies = context.cookies.lock().await;
        let result = match self
            .client
            .complete_interactive_login(&url, &mut cookies)
            .await
        {
            Ok(result) => result,
            Err(e) => return self.fail_with(AuthRoute::Callback, &e),
        };
        // The transaction store is trusted, but the path is checked again all the same.
        let return_to = result
            .app_state
            .as_ref()
            .and_then(|s| s.get("returnTo"))
            .and_then(|v| v.as_str())
            .and_then(safe_return_to)
            .unwrap_or(&settings.default_return_to)
            .to_owned();
        if let Some(hook) = &settings.after_login {
            let user = match self.client.get_user(&mut cookies).await {
                Ok(user) => user.unwrap_or_default(),
                Err(e) => return self.fail_with(AuthRoute::Callback, &e),
            };
            drop(cookies);
            let logged_in = LoggedIn {
                user,
                return_to: return_to.clone(),
                app_state: result.app_state,
            };
            if let Some(response) = hook(logged_in).await {
                return response;
            }
        }
        redirect(&return_to)
    }

    async fn logout(self, context: RequestContext, _request: Request) -> Response {
        let options = LogoutOptions::return_to(self.settings.logout_return_to.clone());
        let mut cookies = context.cookies.lock().await;
        match self.client.logout(options, &mut cookies).await {
            Ok(url) => redirect(url.as_str()),
            Err(e) => self.fail_with(AuthRoute::Logout, &e),
        }
    }

    async fn backchannel_logout(self, context: RequestContext, request: Request) -> Response {
        let route = AuthRoute::BackchannelLogout;
        let Ok(body) = axum::body::to_bytes(request.into_body(), MAX_BACKCHANNEL_BODY).await else {
            return self.fail(route, None, StatusCode::BAD_REQUEST, "invalid_request");
        };
        let token = url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == "logout_token")
            .map(|(_, v)| v.into_owned());
        let Some(token) = token else {
            return self.fail(route, None, StatusCode::BAD_REQUEST, "invalid_request");
        };
        let mut cookies = context.cookies.lock().await;
        match self
            .client
            .handle_backchannel_logout(&token, &mut cookies)
            .await
        {
            Ok(_) => json(StatusCode::OK, &serde_json::json!({})),
            Err(e) => self.fail_with(route, &e),
        }
    }

    async fn profile(self, context: RequestContext, _request: Request) -> Response {
        let mut cookies = context.cookies.lock().await;
        match self.client.get_user(&mut cookies).await {
            Ok(Some(user)) => json(StatusCode::OK, &serde_json::Value::Object(user)),
            Ok(None) => json_error(StatusCode::UNAUTHORIZED, "login_required"),
            Err(e) => self.fail_with(AuthRoute::Profile, &e),
        }
    }

    async fn access_token(self, context: RequestContext, _request: Request) -> Response {
        let mut cookies = context.cookies.lock().await;
        match self.client.get_access_token(&mut cookies).await {
            Ok(token) => json(
                StatusCode::OK,
                &serde_json::json!({
                    "token": token.access_token.expose(),
                    "scope": token.scope,
                    "expires_at": token.expires_at,
                }),
            ),
            Err(e) => self.fail_with(AuthRoute::AccessToken, &e),
        }
    }
}

/// A handler for `method`, given the request and its context (set by the router's own layer).
fn route<S, T, H, Fut>(
    auth0: &Auth0<S, T, H>,
    method: fn(Auth0<S, T, H>, RequestContext, Request) -> Fut,
) -> impl Fn(Request) -> std::pin::Pin<Box<dyn Future<Output = Response> + Send>>
+ Clone
+ Send
+ Sync
+ 'static
where
    S: AsyncStateStore<Options = CookieOptions> + 'static,
    T: AsyncTransactionStore<Options = CookieOptions> + 'static,
    H: HttpClient + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let auth0 = auth0.clone();
    move |request: Request| {
        let auth0 = auth0.clone();
        Box::pin(async move {
            match request.extensions().get::<RequestContext>().cloned() {
                Some(context) => method(auth0, context, request).await,
                None => json_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
            }
        })
    }
}

/// The first value of a query parameter.
fn query_param(request: &Request, name: &str) -> Option<String> {
    let query = request.uri().query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
