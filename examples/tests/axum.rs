//! The SDK's axum integration (`auth0_server::axum`) driven over HTTP against the bundled
//! emulator: `returnTo` open-redirect attempts refused, the profile route, access-token
//! expiry and refresh with rotation reaching the encrypted session cookie through the layer,
//! and the Redis-backed example app on two instances (login on one, use on the other,
//! back-channel logout delivered by the emulator to one ends the session on both).

mod support;

use auth0_emulator::{ANALYTICS_AUDIENCE, DeliveryOutcome, Emulator, EmulatorConfig};
use auth0_server::AccessTokenRequest;
use auth0_server::axum::{Auth0, EnvConfig, LoggedIn, Rejection, RouteFailure, Tokens, User};
use auth0_server::http::ReqwestClient;
use auth0_server::nonblocking::ServerClient;
use auth0_server::store::cookie::{CookieStateStore, CookieTransactionStore};
use auth0_server::store::memory::MemoryStateStore;
use auth0_server_examples::{Tenant, axum_app, serve};
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use support::{Browser, Page, path_of};

/// Follows redirects like [`Browser::follow`], but only to the app and the emulator: a hop
/// anywhere else is an open redirect and fails the test (it is never requested).
fn follow_safely(browser: &mut Browser, app: &str, emulator: &Emulator, url: &str) -> Vec<Page> {
    let mut hops = vec![browser.get(url)];
    while let Some(next) = hops.last().and_then(|p| p.location.clone()) {
        assert!(
            next.starts_with(app) || next.starts_with(&emulator.base_url()),
            "redirected off-site to {next:?}: {hops:#?}"
        );
        assert!(hops.len() < 10, "too many redirects: {hops:#?}");
        hops.push(browser.get(&next));
    }
    hops
}

#[test]
fn return_to_accepts_paths_and_refuses_open_redirects() {
    let app = serve::start(Tenant::emulator(EmulatorConfig::default()), "127.0.0.1:0").unwrap();
    let emulator = app.tenant().emulator.as_ref().unwrap();
    let base = app.base_url();
    for (return_to, lands_on) in [
        ("%2Fapi%2Fdata%3Fx%3D1", "/api/data"),
        ("%2F%2Fevil.example%2F", "/profile"),
        ("%2F%5Cevil.example", "/profile"),
        ("https%3A%2F%2Fevil.example%2F", "/profile"),
        ("%2F%09%2Fevil.example", "/profile"),
        ("javascript%3Aalert(1)", "/profile"),
    ] {
        let mut browser = Browser::new(base);
        let login = format!("/auth/login?returnTo={return_to}");
        let hops = follow_safely(&mut browser, base, emulator, &login);
        let last = hops.last().unwrap();
        assert_eq!(path_of(&last.url), lands_on, "{return_to}: {hops:#?}");
        assert_eq!(last.status, 200, "{return_to}: {}", last.body);
    }
}

#[test]
fn profile_route_guard_and_rejections() {
    let app = serve::start(Tenant::emulator(EmulatorConfig::default()), "127.0.0.1:0").unwrap();
    let mut browser = Browser::new(app.base_url());
    let profile = browser.get("/auth/profile");
    assert_eq!(profile.status, 401);
    assert_eq!(profile.body, r#"{"error":"login_required"}"#);
    // An API call without a session: 401 (no Accept: text/html), not a redirect.
    let api = browser.get("/api/data");
    assert_eq!((api.status, api.location), (401, None));
    // The access-token route is off by default.
    assert_eq!(browser.get("/auth/access-token").status, 404);

    assert_eq!(browser.follow("/auth/login").last().unwrap().status, 200);
    let profile = browser.get("/auth/profile");
    assert_eq!(profile.status, 200, "{}", profile.body);
    let user: serde_json::Value = serde_json::from_str(&profile.body).unwrap();
    assert_eq!(user["sub"], "auth0|emulator-user");
    assert_eq!(user["email"], "emulator-user@example.com");

    // A bad callback: 400 with the code only.
    let callback = browser.get("/auth/callback?code=x&state=forged");
    assert_eq!(callback.status, 400, "{}", callback.body);
    assert!(callback.body.contains("\"error\""), "{}", callback.body);
}

/// An app on encrypted cookie sessions (configured as from the environment), with the
/// access-token route on and a handler that asks for a second API's token.
fn cookie_app(tenant: &Tenant, base_url: &str) -> serve::BuildResult {
    let env = EnvConfig::from_vars(|name| match name {
        "AUTH0_DOMAIN" => Some(tenant.domain.clone()),
        "AUTH0_CLIENT_ID" => Some(tenant.client_id.clone()),
        "AUTH0_CLIENT_SECRET" => Some(tenant.client_secret.clone()),
        "AUTH0_SECRET" => Some(tenant.secret.clone()),
        "APP_BASE_URL" => Some(base_url.to_owned()),
        "AUTH0_AUDIENCE" => tenant.audience.clone(),
        _ => None,
    })?;
    let config = env.config("/auth/callback")?;
    let sessions = CookieStateStore::builder(&config)
        .for_app_base_url(base_url)
        .build()?;
    let logins = CookieTransactionStore::builder(&config)
        .for_app_base_url(base_url)
        .build()?;
    let client = ServerClient::builder(config, sessions, logins, ReqwestClient::new()?).build();
    let auth0 = Auth0::builder(client, base_url)
        .access_token_route(true)
        .build();
    let analytics = |_: User, tokens: Tokens| async move {
        let token = tokens
            .get_access_token_with(AccessTokenRequest::audience(ANALYTICS_AUDIENCE))
            .await?;
        Ok::<_, auth0_server::Error>(format!("audience {}", token.audience))
    };
    // Refreshes, then fails: the layer still sends the rotated refresh token's cookie.
    let teapot = |tokens: Tokens| async move {
        let refreshed = tokens.get_access_token().await.is_ok();
        (
            axum::http::StatusCode::IM_A_TEAPOT,
            format!("refreshed: {refreshed}"),
        )
    };
    Ok(axum::Router::new()
        .route("/analytics", get(analytics))
        .route("/teapot", get(teapot))
        .merge(auth0.router())
        .layer(auth0.layer()))
}

/// The refresh requests the emulator received, by refresh token sent.
fn refreshes(emulator: &Emulator) -> Vec<String> {
    emulator
        .requests_to("/oauth/token")
        .into_iter()
        .filter(|r| {
            r.form
                .iter()
                .any(|(k, v)| k == "grant_type" && v == "refresh_token")
        })
        .filter_map(|r| {
            r.form
                .into_iter()
                .find(|(k, _)| k == "refresh_token")
                .map(|(_, v)| v)
        })
        .collect()
}

#[test]
fn expired_access_tokens_refresh_and_the_rotation_reaches_the_cookie() {
    // Access tokens live 10 s, inside the SDK's 30 s leeway: every request refreshes.
    let config = EmulatorConfig {
        access_token_lifetime: 10,
        ..Default::default()
    };
    let app = serve::start_with(Tenant::emulator(config), "127.0.0.1:0", cookie_app).unwrap();
    let emulator = app.tenant().emulator.as_ref().unwrap();
    let mut browser = Browser::new(app.base_url());
    let hops = browser.follow("/auth/login");
    assert_eq!(path_of(&hops.last().unwrap().url), "/");
    let session_cookie = |b: &Browser| b.jar.header().unwrap_or_default();
    let mut cookie = session_cookie(&browser);

    let mut tokens = Vec::new();
    for round in 1..=3 {
        let page = browser.get("/auth/access-token");
        assert_eq!(page.status, 200, "{}", page.body);
        let json: serde_json::Value = serde_json::from_str(&page.body).unwrap();
        tokens.push(json["token"].as_str().unwrap().to_owned());
        assert_eq!(
            refreshes(emulator).len(),
            round,
            "one refresh per expired token"
        );
        let now = session_cookie(&browser);
        assert_ne!(
            now, cookie,
            "round {round}: the rotated refresh token is in a new cookie"
        );
        cookie = now;
    }
    // Each refresh spent the refresh token the previous one rotated in: no reuse.
    let sent = refreshes(emulator);
    assert_eq!(sent.len(), 3);
    assert!(
        sent[0] != sent[1] && sent[1] != sent[2],
        "rotation followed"
    );
    assert_eq!(emulator.reuse_detections(), 0);
    assert_eq!(emulator.revoked_families(), 0);
    assert!(tokens[0] != tokens[1] && tokens[1] != tokens[2]);

    // A handler that refreshes and then answers with an error status: the rotated refresh
    // token still reaches the browser, so the next refresh spends the newest one.
    let teapot = browser.get("/teapot");
    assert_eq!(
        (teapot.status, teapot.body.as_str()),
        (418, "refreshed: true")
    );
    assert_ne!(
        session_cookie(&browser),
        cookie,
        "Set-Cookie on the 418 answer"
    );
    assert_eq!(browser.get("/auth/access-token").status, 200);
    let sent = refreshes(emulator);
    assert_eq!(sent.len(), 5);
    assert_ne!(sent[3], sent[4]);
    assert_eq!(emulator.reuse_detections(), 0);

    // A second API's token through the `Tokens` extractor (Multi-Resource Refresh Token).
    let analytics = browser.get("/analytics");
    assert_eq!(analytics.status, 200, "{}", analytics.body);
    assert!(
        analytics.body.contains(ANALYTICS_AUDIENCE),
        "{}",
        analytics.body
    );
}

/// A Redis for the test: `REDIS_URL`, else skipped (unless `CI` is set).
fn redis_url() -> Option<String> {
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!("REDIS_URL must be set in CI"),
        _ => {
            eprintln!("skipped: set REDIS_URL=redis://127.0.0.1:PORT/ to run");
            None
        }
    }
}

#[test]
fn redis_app_on_two_instances_shares_sessions_and_backchannel_logout() {
    let Some(redis) = redis_url() else { return };
    let first = Tenant::emulator(EmulatorConfig::default());
    let emulator_url = first.domain.clone();
    let second = Tenant {
        domain: first.domain.clone(),
        client_id: first.client_id.clone(),
        client_secret: first.client_secret.clone(),
        client_assertion_signing_key: None,
        secret: first.secret.clone(),
        audience: first.audience.clone(),
        api_url: first.api_url.clone(),
        app_base_url: None,
        emulator: None,
    };
    let build = |redis: String| {
        move |tenant: &Tenant, base: &str| axum_app::redis_router(tenant, base, &redis)
    };
    let a = serve::start_with(first, "127.0.0.1:0", build(redis.clone())).unwrap();
    let b = serve::start_with(second, "127.0.0.1:0", build(redis)).unwrap();
    let emulator = a.tenant().emulator.as_ref().unwrap();
    assert_eq!(emulator.base_url(), emulator_url);

    // Log in on A; B serves the same session (the cookies of A's host, as behind a balancer).
    let mut on_a = Browser::new(a.base_url());
    assert_eq!(on_a.follow("/auth/login").last().unwrap().status, 200);
    let mut on_b = Browser::new(b.base_url());
    on_b.jar = on_a.jar.clone();
    let profile = on_b.get("/profile");
    assert_eq!(profile.status, 200, "{}", profile.body);
    assert!(profile.body.contains("Emulator User"));
    let api = on_b.get("/api/data");
    assert_eq!(api.status, 200, "{}", api.body);

    // Auth0 ends the user's sessions (as the Management API does) and delivers the logout
    // token to A: the session is gone on both instances.
    let backchannel = format!("{}/auth/backchannel-logout", a.base_url());
    emulator.set_backchannel_logout_uri(Some(&backchannel));
    let deliveries = emulator.end_user_sessions("auth0|emulator-user");
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(deliveries[0].outcome, DeliveryOutcome::Status(200));
    assert_eq!(emulator.backchannel_deliveries().len(), 1);
    assert_eq!(on_b.get("/profile").status, 401);
    assert_eq!(on_a.get("/profile").status, 401);
    assert_eq!(on_b.get("/api/data").status, 401);
}

/// An app with the auth routes under `/account`, a guarded `/app` section, an after-login
/// hook counting logins, and an error page of its own.
fn guarded_app(logins: Arc<AtomicUsize>) -> impl FnOnce(&Tenant, &str) -> serve::BuildResult {
    move |tenant: &Tenant, base_url: &str| {
        let config = tenant.config(&format!("{base_url}/account"))?;
        let sessions = MemoryStateStore::new();
        let tx = CookieTransactionStore::builder(&config)
            .for_app_base_url(base_url)
            .build()?;
        let client = ServerClient::builder(config, sessions, tx, ReqwestClient::new()?).build();
        let auth0 = Auth0::builder(client, base_url)
            .prefix("/account")
            .rejection(Rejection::RedirectToLogin)
            .after_login(move |logged_in: LoggedIn| {
                let logins = logins.clone();
                async move {
                    assert_eq!(logged_in.user["sub"], "auth0|emulator-user");
                    logins.fetch_add(1, Ordering::SeqCst);
                    None
                }
            })
            .on_error(|failure: &RouteFailure<'_>| {
                let page = format!("<p id=\"oops\">Sorry ({})</p>", failure.code);
                Some((failure.status, axum::response::Html(page)).into_response())
            })
            .build();
        let section = axum::Router::new()
            .route(
                "/app/dashboard",
                get(|User(user): User| async move { format!("dashboard of {}", user["sub"]) }),
            )
            .route_layer(auth0.require_session());
        Ok(axum::Router::new()
            .merge(section)
            .route("/", get(|| async { "home" }))
            .merge(auth0.router())
            .layer(auth0.layer()))
    }
}

#[test]
fn route_guard_prefix_and_hooks() {
    let logins = Arc::new(AtomicUsize::new(0));
    let app = serve::start_with(
        Tenant::emulator(EmulatorConfig::default()),
        "127.0.0.1:0",
        guarded_app(logins.clone()),
    )
    .unwrap();
    let emulator = app.tenant().emulator.as_ref().unwrap();
    let base = app.base_url();
    let mut browser = Browser::new(base);

    // The guard sends the browser to the (prefixed) login with returnTo, then back.
    let guarded = browser.get("/app/dashboard?tab=1");
    assert_eq!(guarded.status, 302);
    assert_eq!(
        guarded.location.as_deref(),
        Some(&*format!(
            "{base}/account/auth/login?returnTo=%2Fapp%2Fdashboard%3Ftab%3D1"
        ))
    );
    assert_eq!(
        browser.get("/auth/login").status,
        404,
        "only under the prefix"
    );
    let hops = follow_safely(&mut browser, base, emulator, "/app/dashboard?tab=1");
    let paths: Vec<String> = hops.iter().map(|p| path_of(&p.url)).collect();
    assert_eq!(
        paths,
        [
            "/app/dashboard",
            "/account/auth/login",
            "/authorize",
            "/account/auth/callback",
            "/app/dashboard"
        ]
    );
    assert_eq!(
        hops.last().unwrap().body,
        "dashboard of \"auth0|emulator-user\""
    );
    assert_eq!(
        logins.load(Ordering::SeqCst),
        1,
        "the after-login hook ran once"
    );
    let authorize = &emulator.requests_to("/authorize")[0];
    assert!(
        authorize
            .query
            .iter()
            .any(|(k, v)| k == "redirect_uri" && *v == format!("{base}/account/auth/callback"))
    );

    // The application's own error page for a bad callback.
    let failed = browser.get("/account/auth/callback?code=x&state=forged");
    assert_eq!(failed.status, 400);
    assert!(
        failed.body.contains("<p id=\"oops\">Sorry ("),
        "{}",
        failed.body
    );

    // Logout under the prefix; the guard refuses again.
    let hops = follow_safely(&mut browser, base, emulator, "/account/auth/logout");
    assert_eq!(path_of(&hops.last().unwrap().url), "/");
    assert_eq!(browser.get("/app/dashboard").status, 302);
}
