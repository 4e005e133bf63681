//! The example web app on the **async** client, with axum on tokio, and the SDK's shipped
//! `reqwest` client ([`ReqwestClient`], feature `reqwest`): no HTTP adapter code in the app.
//!
//! Store-options plumbing: every handler takes the request's [`HeaderMap`], builds
//! [`CookieOptions::from_request_headers`] (request cookies in), passes the options to each
//! SDK call, and ends with [`CookieOptions::apply_to`] on the response headers (`Set-Cookie`
//! out) — see [`with_cookies`].
//!
//! Sessions live server-side in a [`MemoryStateStore`] (so back-channel logout can end
//! them); the login transaction travels in an encrypted cookie ([`CookieTransactionStore`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let tenant = auth0_server_examples::Tenant::from_env()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! let base_url = tenant.app_base_url_for(listener.local_addr()?);
//! let app = auth0_server_examples::axum_app::router(&tenant, &base_url)?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

use crate::{Tenant, pages};
use auth0_server::http::ReqwestClient;
use auth0_server::nonblocking::ServerClient;
use auth0_server::store::CookieOptions;
use auth0_server::store::cookie::{CookieTransactionStore, is_loopback_http};
use auth0_server::store::memory::MemoryStateStore;
use auth0_server::{LogoutOptions, StartLoginOptions};
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The client type of this app.
pub type Client = ServerClient<MemoryStateStore, CookieTransactionStore, ReqwestClient>;

/// What the handlers share.
#[derive(Debug)]
struct App {
    client: Client,
    base_url: String,
    api_url: Option<String>,
    http: reqwest::Client,
}

type Shared = State<Arc<App>>;

/// The app's routes for `tenant`, served at `base_url`.
///
/// # Errors
/// When the configuration is invalid or the HTTP client cannot be built.
pub fn router(
    tenant: &Tenant,
    base_url: &str,
) -> Result<Router, Box<dyn std::error::Error + Send + Sync>> {
    let config = tenant.config(base_url)?;
    let transactions = CookieTransactionStore::builder(&config)
        .for_app_base_url(base_url)
        .build()?;
    let sessions = MemoryStateStore::new().secure(!is_loopback_http(base_url));
    let http = ReqwestClient::new()?;
    let app = App {
        client: ServerClient::builder(config, sessions, transactions, http.clone()).build(),
        base_url: base_url.to_owned(),
        api_url: tenant.api_url.clone(),
        http: http.client().clone(),
    };
    Ok(Router::new()
        .route("/", get(home))
        .route("/auth/login", get(login))
        .route("/auth/callback", get(callback))
        .route("/auth/logout", get(logout))
        .route("/auth/backchannel-logout", post(backchannel_logout))
        .route("/profile", get(profile))
        .route("/api/data", get(api_data))
        .with_state(Arc::new(app)))
}

/// Set-Cookie out: appends the cookies the stores wrote during this request to the response.
pub fn with_cookies(response: impl IntoResponse, options: &CookieOptions) -> Response {
    let mut response = response.into_response();
    options.apply_to(response.headers_mut());
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

fn redirect(location: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location.to_owned())]).into_response()
}

fn error(status: StatusCode, e: &auth0_server::Error) -> Response {
    (
        status,
        Html(pages::error(e.code().as_str(), &e.to_string())),
    )
        .into_response()
}

async fn home(State(app): Shared, headers: HeaderMap) -> Response {
    let mut options = CookieOptions::from_request_headers(&headers);
    let reply = match app.client.get_user(&mut options).await {
        Ok(user) => Html(pages::home(user.as_ref())).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    with_cookies(reply, &options)
}

async fn login(State(app): Shared, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    let mut options = CookieOptions::from_request_headers(&headers);
    let login = StartLoginOptions::new().app_state(crate::login_app_state(query.as_deref()));
    let reply = match app
        .client
        .start_interactive_login(login, &mut options)
        .await
    {
        Ok(url) => redirect(url.as_str()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    with_cookies(reply, &options)
}

async fn callback(State(app): Shared, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    let mut options = CookieOptions::from_request_headers(&headers);
    let url = format!("{}?{}", crate::CALLBACK_PATH, query.unwrap_or_default());
    let reply = match app
        .client
        .complete_interactive_login(&url, &mut options)
        .await
    {
        Ok(result) => redirect(&crate::safe_return_to(result.app_state.as_ref())),
        Err(e) => error(StatusCode::BAD_REQUEST, &e),
    };
    with_cookies(reply, &options)
}

async fn logout(State(app): Shared, headers: HeaderMap) -> Response {
    let mut options = CookieOptions::from_request_headers(&headers);
    let return_to = LogoutOptions::return_to(format!("{}/", app.base_url));
    let reply = match app.client.logout(return_to, &mut options).await {
        Ok(url) => redirect(url.as_str()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    with_cookies(reply, &options)
}

async fn backchannel_logout(State(app): Shared, headers: HeaderMap, body: String) -> Response {
    let mut options = CookieOptions::from_request_headers(&headers);
    let token = url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned());
    let Some(token) = token else {
        let page = pages::error("invalid_request", "missing logout_token");
        return (StatusCode::BAD_REQUEST, Html(page)).into_response();
    };
    let reply = match app
        .client
        .handle_backchannel_logout(&token, &mut options)
        .await
    {
        Ok(_) => Html(pages::page("Logged out", "<p>Session ended.</p>")).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, &e),
    };
    with_cookies(reply, &options)
}

async fn profile(State(app): Shared, headers: HeaderMap) -> Response {
    let mut options = CookieOptions::from_request_headers(&headers);
    let reply = match app.client.get_user(&mut options).await {
        Ok(Some(user)) => match app.client.get_session(&mut options).await {
            Ok(session) => Html(pages::profile(&user, session.as_ref())).into_response(),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        },
        Ok(None) => (StatusCode::UNAUTHORIZED, Html(pages::logged_out())).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    with_cookies(reply, &options)
}

async fn api_data(State(app): Shared, headers: HeaderMap) -> Response {
    let mut options = CookieOptions::from_request_headers(&headers);
    let reply = call_api(&app, &mut options).await;
    with_cookies(reply, &options)
}

async fn call_api(app: &App, options: &mut CookieOptions) -> Response {
    match app.client.get_user(options).await {
        Ok(Some(_)) => {}
        Ok(None) => return (StatusCode::UNAUTHORIZED, Html(pages::logged_out())).into_response(),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
    let token = match app.client.get_access_token(options).await {
        Ok(token) => token,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let Some(api_url) = &app.api_url else {
        let page = pages::error("no_api_url", "set API_URL to the protected API to call");
        return (StatusCode::INTERNAL_SERVER_ERROR, Html(page)).into_response();
    };
    let answer = app
        .http
        .get(api_url)
        .bearer_auth(token.access_token.expose())
        .send()
        .await;
    match answer {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            Html(pages::api_data(status, &body)).into_response()
        }
        Err(e) => {
            let page = pages::error("api_unreachable", &e.to_string());
            (StatusCode::BAD_GATEWAY, Html(page)).into_response()
        }
    }
}

/// The app running on its own tokio runtime in a background thread (for the tests, and for
/// embedding in a blocking program); dropping it shuts the server down gracefully.
pub struct RunningApp {
    base_url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    tenant: Tenant,
}

impl std::fmt::Debug for RunningApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningApp")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl RunningApp {
    /// The app's base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The tenant the app talks to (with the bundled emulator when offline).
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }
}

impl Drop for RunningApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Binds `addr` (`127.0.0.1:0` for an ephemeral port) and serves the app on a new
/// two-worker tokio runtime in a background thread.
///
/// # Errors
/// When the address cannot be bound, the configuration is invalid or the runtime cannot
/// start.
pub fn start(
    tenant: Tenant,
    addr: &str,
) -> Result<RunningApp, Box<dyn std::error::Error + Send + Sync>> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let base_url = tenant.app_base_url_for(listener.local_addr()?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let app = {
        let _entered = runtime.enter();
        router(&tenant, &base_url)?
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("axum-app".into())
        .spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await;
            });
        })?;
    Ok(RunningApp {
        base_url,
        shutdown: Some(tx),
        thread: Some(thread),
        tenant,
    })
}
