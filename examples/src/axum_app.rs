//! The example web app on the async client with the SDK's axum integration
//! (`auth0_server::axum`): the auth routes are mounted, the layer owns the cookies, handlers
//! take the user and the access token as extractors. Sessions live server-side, in memory
//! ([`router`]) or in Redis shared by several instances ([`redis_router`]), so back-channel
//! logout can end them. Run it with `cargo run -p auth0-server-examples --bin axum_app`.

use crate::{Tenant, pages};
use auth0_server::axum::{AccessToken, Auth0, Session, User};
use auth0_server::http::ReqwestClient;
use auth0_server::nonblocking::{ServerClient, ServerClientBuilder};
use auth0_server::store::cookie::{CookieTransactionStore, is_loopback_http};
use auth0_server::store::memory::MemoryStateStore;
use auth0_server::store::redis::{RedisStateStore, RedisTransactionStore};
use auth0_server::store::{AsyncStateStore, AsyncTransactionStore, CookieOptions};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::{Router, routing::get};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The app for `tenant` served at `base_url`, sessions in memory (one instance).
pub fn router(tenant: &Tenant, base_url: &str) -> Result<Router, Error> {
    let config = tenant.config(base_url)?;
    let logins = CookieTransactionStore::builder(&config).for_app_base_url(base_url);
    let sessions = MemoryStateStore::new().secure(!is_loopback_http(base_url));
    let client = ServerClient::builder(config, sessions, logins.build()?, ReqwestClient::new()?);
    app(tenant, base_url, client)
}

/// The same app with sessions and logins in Redis at `redis_url`: any number of instances
/// serve the same users, and a back-channel logout received by one ends the session on all.
pub fn redis_router(tenant: &Tenant, base_url: &str, redis_url: &str) -> Result<Router, Error> {
    let config = tenant.config(base_url)?;
    let sessions = RedisStateStore::builder(&config, redis_url).for_app_base_url(base_url);
    let logins = RedisTransactionStore::builder(&config, redis_url).for_app_base_url(base_url);
    let (sessions, logins) = (sessions.build_async()?, logins.build_async()?);
    let client = ServerClient::builder(config, sessions, logins, ReqwestClient::new()?);
    app(tenant, base_url, client)
}

type Builder<S, T> = ServerClientBuilder<S, T, ReqwestClient>;

fn app<S, T>(tenant: &Tenant, base_url: &str, client: Builder<S, T>) -> Result<Router, Error>
where
    S: AsyncStateStore<Options = CookieOptions> + 'static,
    T: AsyncTransactionStore<Options = CookieOptions> + 'static,
{
    // A refresh the browser walked away from still completes (its rotation is kept).
    let client = client
        .spawn_with(|flight| drop(tokio::spawn(flight)))
        .build();
    let auth0 = Auth0::builder(client, base_url)
        .default_return_to("/profile")
        .build();
    let (url, http) = (
        tenant.api_url.clone(),
        ReqwestClient::new()?.client().clone(),
    );
    Ok(Router::new()
        .route("/", get(home))
        .route("/profile", get(profile))
        .route("/api/data", get(api_data))
        .with_state(Api { url, http })
        .merge(auth0.router()) // /auth/login, /auth/callback, /auth/logout, …
        .layer(auth0.layer())) // request cookies in, every Set-Cookie out
}

async fn home(user: Option<User>) -> Html<String> {
    Html(pages::home(user.map(|u| u.0).as_ref()))
}

async fn profile(user: Option<User>, session: Option<Session>) -> Response {
    let Some(User(user)) = user else {
        return (StatusCode::UNAUTHORIZED, Html(pages::logged_out())).into_response();
    };
    Html(pages::profile(&user, session.map(|s| s.0).as_ref())).into_response()
}

/// The protected API `/api/data` calls.
#[derive(Clone)]
struct Api {
    url: Option<String>,
    http: reqwest::Client,
}

/// Calls the API with the session's access token (refreshed when expired; 401 without one).
async fn api_data(State(api): State<Api>, token: AccessToken) -> Response {
    let Some(url) = &api.url else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "set API_URL").into_response();
    };
    let Ok(answer) = api.http.get(url).bearer_auth(token.expose()).send().await else {
        return (StatusCode::BAD_GATEWAY, "the API did not answer").into_response();
    };
    let status = answer.status().as_u16();
    Html(pages::api_data(
        status,
        &answer.text().await.unwrap_or_default(),
    ))
    .into_response()
}
