//! Both example apps driven over HTTP like a browser, against the bundled emulator: login →
//! `/profile` shows the user → `/api/data` → logout → logged out, and back-channel logout.

mod support;

use auth0_emulator::{Emulator, EmulatorConfig};
use auth0_server_examples::{Tenant, blocking_app, serve};
use support::{Browser, path_of};

/// The whole story against an app at `base_url`.
fn browse(base_url: &str, emulator: &Emulator) {
    let mut browser = Browser::new(base_url);

    // `/` offers the login link.
    let home = browser.get("/");
    assert_eq!(home.status, 200);
    assert!(home.body.contains("href=\"/auth/login\""), "{}", home.body);

    // Login: the app → the emulator's /authorize → the app's callback → /profile.
    let hops = browser.follow("/auth/login");
    let paths: Vec<String> = hops.iter().map(|p| path_of(&p.url)).collect();
    assert_eq!(
        paths,
        ["/auth/login", "/authorize", "/auth/callback", "/profile"],
        "{hops:#?}"
    );
    assert!(
        hops[0]
            .location
            .as_deref()
            .unwrap()
            .starts_with(&emulator.url("/authorize"))
    );
    let profile = hops.last().unwrap();
    assert_eq!(profile.status, 200, "{}", profile.body);
    assert!(profile.body.contains("Emulator User"), "{}", profile.body);
    assert!(profile.body.contains("emulator-user@example.com"));
    assert!(
        profile.body.contains("https://api.example.com"),
        "the session's token set"
    );
    assert!(
        browser.jar.names().contains(&"__a0_sid"),
        "{:?}",
        browser.jar.names()
    );
    assert!(
        !browser.jar.names().iter().any(|n| n.starts_with("_a0_tx")),
        "the transaction cookie is deleted after the callback"
    );

    // The session survives a reload; `/` greets the user.
    assert_eq!(browser.get("/profile").status, 200);
    assert!(browser.get("/").body.contains("Hello, Emulator User"));

    // `/api/data` calls the protected API with the session's access token.
    let api = browser.get("/api/data");
    assert_eq!(api.status, 200, "{}", api.body);
    assert!(api.body.contains("Hello from the emulator"), "{}", api.body);
    assert!(api.body.contains("auth0|emulator-user"), "{}", api.body);
    assert_eq!(emulator.requests_to("/api/data").len(), 1);

    // Logout: the app → the emulator's end_session_endpoint (advertised by discovery, so
    // RP-Initiated Logout) → back to `/`.
    let hops = browser.follow("/auth/logout");
    let paths: Vec<String> = hops.iter().map(|p| path_of(&p.url)).collect();
    assert_eq!(paths, ["/auth/logout", "/oidc/logout", "/"], "{hops:#?}");
    assert!(hops.last().unwrap().body.contains("href=\"/auth/login\""));
    assert!(
        browser.jar.is_empty(),
        "cookies left: {:?}",
        browser.jar.names()
    );

    // Logged out: `/profile` and `/api/data` say so.
    let profile = browser.get("/profile");
    assert_eq!(profile.status, 401);
    assert!(
        profile.body.contains("You are not logged in"),
        "{}",
        profile.body
    );
    assert_eq!(browser.get("/api/data").status, 401);

    // Back-channel logout: another browser logs in; Auth0 ends its session server-to-server.
    let mut other = Browser::new(base_url);
    assert_eq!(other.follow("/auth/login").last().unwrap().status, 200);
    assert_eq!(other.get("/profile").status, 200);
    let rejected = other.post_form("/auth/backchannel-logout", &[("logout_token", "not-a-jwt")]);
    assert_eq!(rejected.status, 400, "{}", rejected.body);
    assert_eq!(
        other.get("/profile").status,
        200,
        "a bad token ends nothing"
    );
    let token = emulator.mint_logout_token(Some("auth0|emulator-user"), None, Default::default());
    let ended = other.post_form("/auth/backchannel-logout", &[("logout_token", &token)]);
    assert_eq!(ended.status, 200, "{}", ended.body);
    assert_eq!(other.get("/profile").status, 401, "the session was ended");
}

#[test]
fn blocking_app_login_profile_api_logout() {
    let app = blocking_app::start(Tenant::emulator(EmulatorConfig::default()), "127.0.0.1:0")
        .expect("start the blocking app");
    browse(app.base_url(), app.tenant().emulator.as_ref().unwrap());
}

#[test]
fn axum_app_login_profile_api_logout() {
    let app = serve::start(Tenant::emulator(EmulatorConfig::default()), "127.0.0.1:0")
        .expect("start the axum app");
    browse(app.base_url(), app.tenant().emulator.as_ref().unwrap());
}
