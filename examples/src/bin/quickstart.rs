//! The quickstart: the "Retrieving Data" guide, run end to end against the bundled Auth0
//! emulator with the blocking client and the encrypted cookie stores.
//!
//! `cargo run -p auth0-server-examples --bin quickstart` walks through the story and exits
//! 0 when every step behaved as the guide says; `--serve` starts the blocking example web
//! app instead and keeps running.
#![forbid(unsafe_code)]

use auth0_emulator::{ANALYTICS_AUDIENCE, DEFAULT_AUDIENCE, EmulatorConfig};
use auth0_server::blocking::ServerClient;
use auth0_server::clock::Clock;
use auth0_server::store::cookie::{CookieStateStore, CookieTransactionStore};
use auth0_server::{AccessTokenRequest, ConnectionTokenRequest, LogoutOptions, StartLoginOptions};
use auth0_server_examples::jar::CookieJar;
use auth0_server_examples::{Tenant, blocking_app, shorten};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Access tokens live this long in the emulator, so the walkthrough can outlive one.
const ACCESS_TOKEN_LIFETIME: u64 = 60;
/// Where the walkthrough pretends the app is served (nothing listens there; the callback is
/// completed in-process).
const APP_BASE_URL: &str = "http://127.0.0.1:3000";

fn main() -> ExitCode {
    let serve = std::env::args().skip(1).any(|a| a == "--serve");
    let result = if serve { serve_app() } else { walkthrough() };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nquickstart FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--serve`: the blocking example app (against the emulator unless AUTH0_DOMAIN is set).
fn serve_app() -> Result {
    let tenant = Tenant::from_env()?;
    let addr = tenant.listen_addr(3000);
    let app = blocking_app::start(tenant, &addr)?;
    println!(
        "quickstart --serve: the blocking example app talks to {}",
        app.tenant().domain
    );
    println!(
        "Open {}/ in a browser and click \"Log in\" (Ctrl-C to stop).",
        app.base_url()
    );
    app.wait();
    Ok(())
}

/// Numbered output, one step at a time.
struct Steps {
    n: usize,
}

impl Steps {
    fn step(&mut self, line: impl AsRef<str>) {
        self.n += 1;
        println!("{:>2}. {}", self.n, line.as_ref());
    }
    fn detail(&self, line: impl AsRef<str>) {
        println!("    {}", line.as_ref());
    }
}

fn check(condition: bool, what: impl Into<String>) -> Result {
    if condition {
        Ok(())
    } else {
        Err(what.into().into())
    }
}

fn walkthrough() -> Result {
    if std::env::var_os("AUTH0_DOMAIN").is_some() {
        return Err(
            "the walkthrough logs in without a browser, which only the bundled \
                    emulator allows: unset AUTH0_DOMAIN, or run `quickstart --serve` (or the \
                    example apps) to log in to your tenant in a browser"
                .into(),
        );
    }
    let mut out = Steps { n: 0 };

    // The tenant: the bundled emulator, with short-lived access tokens.
    let tenant = Tenant::emulator(EmulatorConfig {
        access_token_lifetime: ACCESS_TOKEN_LIFETIME,
        ..EmulatorConfig::default()
    });
    let emulator = tenant
        .emulator
        .as_ref()
        .ok_or("the emulator did not start")?;
    let token_requests = || emulator.token_requests().len();
    out.step(format!(
        "Started the Auth0 emulator at {} (access tokens live {ACCESS_TOKEN_LIFETIME} s)",
        emulator.base_url()
    ));

    // A clock we can move forward: starts at the real time.
    let now = Arc::new(AtomicU64::new(
        SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs(),
    ));
    let clock = {
        let now = now.clone();
        Clock::from_fn(move || now.load(Ordering::SeqCst))
    };

    // The client: per-audience scopes, encrypted cookie stores, the controllable clock.
    let config = tenant.config(APP_BASE_URL)?;
    let sessions = CookieStateStore::builder(&config)
        .for_app_base_url(APP_BASE_URL)
        .build()?;
    let transactions = CookieTransactionStore::builder(&config)
        .for_app_base_url(APP_BASE_URL)
        .build()?;
    // The client reads the clock and hands it to the stores with every call.
    let client = ServerClient::builder(config, sessions, transactions)
        .clock(clock)
        .build();
    out.step(format!(
        "Built the blocking ServerClient: audience {DEFAULT_AUDIENCE}, scopes per audience ({ANALYTICS_AUDIENCE} → \"{}\"), encrypted cookie stores",
        auth0_server_examples::ANALYTICS_SCOPE
    ));

    // The browser: a cookie jar, carried from one "request" to the next.
    let mut browser = CookieJar::new();
    let browser_http = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent();

    // Request 1: /auth/login.
    let mut request = browser.request_options();
    let authorize = client.start_interactive_login(
        StartLoginOptions::new().app_state(serde_json::json!({ "returnTo": "/profile" })),
        &mut request,
    )?;
    browser.store_from(&request);
    out.step(format!(
        "start_interactive_login → redirect to {}{} (transaction cookie: {})",
        authorize.origin().ascii_serialization(),
        authorize.path(),
        browser.names().join(", ")
    ));

    // The browser follows the redirect: the emulator logs the test user in and redirects back.
    let response = browser_http.get(authorize.as_str()).call()?;
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            format!(
                "the emulator answered {} without a redirect",
                response.status()
            )
        })?
        .to_owned();
    let callback = url::Url::parse(&location)?;
    check(
        callback.path() == auth0_server_examples::CALLBACK_PATH,
        format!("redirected to {location}, not the callback"),
    )?;
    out.step(format!(
        "The emulator logged in the test user and redirected the browser to {} with a code",
        callback.path()
    ));

    // Request 2: /auth/callback.
    let before = token_requests();
    let mut request = browser.request_options();
    let result = client.complete_interactive_login(callback.as_str(), &mut request)?;
    browser.store_from(&request);
    check(
        browser.names().iter().any(|n| n.starts_with("_a0_session")),
        "no session cookie after login",
    )?;
    check(
        !browser.names().iter().any(|n| n.starts_with("_a0_tx")),
        "the transaction cookie was not deleted",
    )?;
    out.step(format!(
        "complete_interactive_login → logged in (returnTo {}); session cookies: {} ({} bytes, encrypted)",
        auth0_server_examples::safe_return_to(result.app_state.as_ref()),
        browser.names().join(", "),
        browser.total_len()
    ));
    out.detail(format!(
        "token requests: {} (the code exchange)",
        token_requests() - before
    ));

    // Every later "request" carries the jar's cookies in and stores the Set-Cookie values out.
    // get_user
    let mut request = browser.request_options();
    let user = client
        .get_user(&mut request)?
        .ok_or("get_user returned no user after login")?;
    browser.store_from(&request);
    let claim = |k: &str| {
        user.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_owned()
    };
    check(
        claim("sub") == "auth0|emulator-user",
        "get_user: unexpected sub",
    )?;
    out.step(format!(
        "get_user → sub {}, name \"{}\", email {}",
        claim("sub"),
        claim("name"),
        claim("email")
    ));

    // get_session
    let mut request = browser.request_options();
    let session = client
        .get_session(&mut request)?
        .ok_or("get_session returned nothing")?;
    browser.store_from(&request);
    check(
        session.refresh_token.is_some(),
        "get_session: no refresh token (offline_access)",
    )?;
    out.step(format!(
        "get_session → {} access token(s), refresh token present, ID token {}",
        session.token_sets.len(),
        session
            .id_token
            .as_ref()
            .map_or("absent".into(), |t| shorten(t.expose()))
    ));

    // get_access_token (default audience): the login's token, from the session.
    let before = token_requests();
    let mut request = browser.request_options();
    let default_token = client.get_access_token(&mut request)?;
    browser.store_from(&request);
    check(
        default_token.audience == DEFAULT_AUDIENCE,
        "get_access_token: wrong audience",
    )?;
    out.step(format!(
        "get_access_token → {} for {} (scope \"{}\")",
        shorten(default_token.access_token.expose()),
        default_token.audience,
        default_token.scope.as_deref().unwrap_or("")
    ));
    out.detail(format!(
        "token requests: {} (the login's token, served from the session)",
        token_requests() - before
    ));

    // get_access_token_with(a second audience): MRRT, with that audience's configured scopes.
    let before = token_requests();
    let mut request = browser.request_options();
    let analytics = client.get_access_token_with(
        AccessTokenRequest::audience(ANALYTICS_AUDIENCE),
        &mut request,
    )?;
    browser.store_from(&request);
    let analytics_scope = analytics.scope.clone().unwrap_or_default();
    check(
        analytics.audience == ANALYTICS_AUDIENCE,
        "MRRT: wrong audience",
    )?;
    check(
        analytics_scope.contains("read:analytics") && analytics_scope.contains("write:analytics"),
        format!("MRRT: scope \"{analytics_scope}\" lacks the configured analytics scopes"),
    )?;
    check(
        token_requests() - before == 1,
        "MRRT: expected one refresh request",
    )?;
    out.step(format!(
        "get_access_token_with(audience {ANALYTICS_AUDIENCE}) → {} (scope \"{analytics_scope}\")",
        shorten(analytics.access_token.expose())
    ));
    out.detail("token requests: 1 (refresh token exchanged for the second API: Multi-Resource Refresh Token)");

    // An extra scope for the default audience: merged with the configured ones.
    let before = token_requests();
    let mut request = browser.request_options();
    let extra_request = || AccessTokenRequest::audience(DEFAULT_AUDIENCE).scope("write:orders");
    let extra = client.get_access_token_with(extra_request(), &mut request)?;
    browser.store_from(&request);
    let extra_scope = extra.scope.clone().unwrap_or_default();
    check(
        extra_scope.contains("write:orders") && extra_scope.contains("read:products"),
        format!("extra scope: got \"{extra_scope}\""),
    )?;
    out.step(format!(
        "get_access_token_with(audience {DEFAULT_AUDIENCE}, scope \"write:orders\") → {} (scope \"{extra_scope}\")",
        shorten(extra.access_token.expose())
    ));
    out.detail(format!(
        "token requests: {} (a broader token for the same API; it replaces the login's token, whose scopes it covers)",
        token_requests() - before
    ));

    // A connection (token vault) token.
    let before = token_requests();
    let mut request = browser.request_options();
    let google = client.get_access_token_for_connection(
        ConnectionTokenRequest::new("google-oauth2"),
        &mut request,
    )?;
    browser.store_from(&request);
    out.step(format!(
        "get_access_token_for_connection(google-oauth2) → {} (scope \"{}\")",
        shorten(google.access_token.expose()),
        google.scope.as_deref().unwrap_or("")
    ));
    out.detail(format!(
        "token requests: {} (federated connection token exchange)",
        token_requests() - before
    ));

    // The same four calls again: all served from the session cookie.
    let before = token_requests();
    let mut request = browser.request_options();
    let again = [
        client.get_access_token(&mut request)?.access_token,
        client
            .get_access_token_with(
                AccessTokenRequest::audience(ANALYTICS_AUDIENCE),
                &mut request,
            )?
            .access_token,
        client
            .get_access_token_with(extra_request(), &mut request)?
            .access_token,
        client
            .get_access_token_for_connection(
                ConnectionTokenRequest::new("google-oauth2"),
                &mut request,
            )?
            .access_token,
    ];
    browser.store_from(&request);
    // The default request is now served by the broader token, which covers its scopes.
    let same = again[0] == extra.access_token
        && again[1] == analytics.access_token
        && again[2] == extra.access_token
        && again[3] == google.access_token;
    check(same, "the repeated calls returned different tokens")?;
    check(
        token_requests() == before,
        format!(
            "the repeated calls sent {} token request(s)",
            token_requests() - before
        ),
    )?;
    out.step(
        "The same four calls again → served from the session (the default API's request by the broader token)",
    );
    out.detail(format!(
        "token requests: 0 (emulator total still {})",
        token_requests()
    ));

    // Time passes: the access tokens expire, the next call refreshes.
    let advanced = ACCESS_TOKEN_LIFETIME + 60;
    now.fetch_add(advanced, Ordering::SeqCst);
    let before = token_requests();
    let mut request = browser.request_options();
    let refreshed = client.get_access_token(&mut request)?;
    browser.store_from(&request);
    let refreshes: Vec<_> = emulator.token_requests().into_iter().skip(before).collect();
    check(
        refreshed.access_token != default_token.access_token,
        "the token was not refreshed",
    )?;
    check(
        refreshes.len() == 1 && refreshes[0].param("grant_type") == Some("refresh_token"),
        format!("expected one refresh request, saw {}", refreshes.len()),
    )?;
    out.step(format!(
        "Clock moved {advanced} s ahead (tokens expired) → get_access_token refreshed: {} (new token)",
        shorten(refreshed.access_token.expose())
    ));
    out.detail("token requests: 1 (grant_type=refresh_token); the rotated refresh token went back into the session cookie");

    // Call the protected API with it.
    let api = emulator.url("/api/data");
    let mut response = browser_http
        .get(&api)
        .header(
            "Authorization",
            format!("Bearer {}", refreshed.access_token.expose()),
        )
        .call()?;
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string()?;
    check(
        status == 200,
        format!("/api/data answered {status}: {body}"),
    )?;
    let json: serde_json::Value = serde_json::from_str(&body)?;
    out.step(format!(
        "GET /api/data with the token → {status}: \"{}\" (sub {})",
        json["message"].as_str().unwrap_or(""),
        json["sub"].as_str().unwrap_or("?")
    ));

    // Log out.
    let mut request = browser.request_options();
    let logout_url = client.logout(
        LogoutOptions::return_to(format!("{APP_BASE_URL}/")),
        &mut request,
    )?;
    browser.store_from(&request);
    check(
        browser.is_empty(),
        format!("cookies left after logout: {}", browser.names().join(", ")),
    )?;
    let mut shown = logout_url.clone();
    shown.set_query(None);
    out.step(format!(
        "logout → session cookies cleared; redirect the browser to {shown}?…"
    ));
    // The provider's end_session_endpoint (advertised by discovery) carries the ID token as
    // `id_token_hint`: shown elided, a token never goes to the terminal.
    let mut printable = logout_url.clone();
    let pairs: Vec<(String, String)> = logout_url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "id_token_hint" {
                "…".into()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    printable.query_pairs_mut().clear().extend_pairs(pairs);
    out.detail(format!("logout URL: {printable}"));
    let mut request = browser.request_options();
    let user = client.get_user(&mut request)?;
    check(user.is_none(), "get_user still returns a user after logout")?;
    out.step("get_user → None (logged out)");

    println!("\nAll {} steps passed.", out.n);
    Ok(())
}
