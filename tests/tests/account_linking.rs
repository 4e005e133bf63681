//! End-to-end: account linking and unlinking through both clients against the emulator. The
//! logged-in user starts a link (the session's ID token as `id_token_hint`,
//! `requested_connection`), the browser goes through `/authorize`, and the callback merges the
//! answer into the *same* session; without a session, or when the session changed hands
//! meanwhile, a typed error and nothing saved.

mod adapter_support;
mod login_support;

use auth0_server::LinkUserOptions;
use auth0_server::StartLoginOptions;
use login_support::{Clients, Fixture, follow, query};

fn link_merges_into_the_same_session<C: Clients>() {
    let fx = Fixture::new::<C>();
    let mut browser = fx.browser();
    browser.login(StartLoginOptions::new());
    let before = browser.session().expect("logged in");
    let url = browser
        .request(|api, c| {
            api.link(
                false,
                LinkUserOptions::new("google-oauth2")
                    .connection_scope("https://www.googleapis.com/auth/calendar.readonly")
                    .app_state(serde_json::json!({"return_to": "/settings"})),
                c,
            )
        })
        .expect("start_link_user");
    let url_text = url.as_str();
    assert_eq!(
        query(url_text, "id_token_hint").as_deref(),
        before.id_token.as_ref().map(|t| t.expose())
    );
    assert_eq!(
        query(url_text, "requested_connection").as_deref(),
        Some("google-oauth2")
    );
    let scope = query(url_text, "scope").unwrap();
    assert!(scope.split(' ').any(|s| s == "link_account"), "{scope}");
    let callback = follow(&url);
    let result = browser.complete(&callback).expect("link completed");
    assert_eq!(result.app_state.unwrap()["return_to"], "/settings");
    let links = fx.emu.account_link_requests();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].action, "link_account");
    assert_eq!(links[0].connection, "google-oauth2");
    // The same session, merged: same sid and creation, a new ID token.
    let after = browser.session().expect("still logged in");
    assert_eq!(after.internal.sid, before.internal.sid);
    assert_eq!(after.internal.created_at, before.internal.created_at);
    assert_eq!(after.sub(), before.sub());
    assert_ne!(
        after.id_token.as_ref().map(|t| t.expose().to_owned()),
        before.id_token.as_ref().map(|t| t.expose().to_owned())
    );
    let replay = browser.complete(&callback).unwrap_err();
    assert_eq!(
        replay.code(),
        "missing_transaction",
        "the link transaction is spent"
    );
}

fn unlink_asks_for_unlink_account<C: Clients>() {
    let fx = Fixture::new::<C>();
    let mut browser = fx.browser();
    browser.login(StartLoginOptions::new());
    let url = browser
        .request(|api, c| api.link(true, LinkUserOptions::new("google-oauth2"), c))
        .expect("start_unlink_user");
    let callback = follow(&url);
    browser.complete(&callback).expect("unlink completed");
    let links = fx.emu.account_link_requests();
    assert_eq!(links[0].action, "unlink_account");
    assert!(browser.session().is_some());
}

fn linking_needs_a_session<C: Clients>() {
    let fx = Fixture::new::<C>();
    let mut browser = fx.browser();
    let e = browser
        .request(|api, c| api.link(false, LinkUserOptions::new("google-oauth2"), c))
        .unwrap_err();
    assert_eq!(e.code(), "missing_session");
    assert!(fx.emu.requests_to("/authorize").is_empty());
}

fn bad_link_options_are_refused<C: Clients>() {
    let fx = Fixture::new::<C>();
    let mut browser = fx.browser();
    browser.login(StartLoginOptions::new());
    for options in [
        LinkUserOptions::new(" "),
        LinkUserOptions::new("google-oauth2").param("id_token_hint", "someone-else"),
        LinkUserOptions::new("google-oauth2").param("scope", "openid"),
    ] {
        let e = browser
            .request(|api, c| api.link(false, options, c))
            .unwrap_err();
        assert_eq!(e.code(), "invalid_parameter");
    }
}

/// The session ended while the user was at Auth0: the callback does not create one from the
/// link's answer (a link is not a login).
fn a_link_completed_after_logout_saves_nothing<C: Clients>() {
    let fx = Fixture::new::<C>();
    let mut browser = fx.browser();
    browser.login(StartLoginOptions::new());
    let url = browser
        .request(|api, c| api.link(false, LinkUserOptions::new("google-oauth2"), c))
        .expect("start_link_user");
    let callback = follow(&url);
    browser
        .request(|api, c| api.logout(Default::default(), c))
        .expect("logout");
    assert!(browser.session().is_none());
    let e = browser.complete(&callback).unwrap_err();
    assert_eq!(e.code(), "missing_session");
    assert!(
        browser.session().is_none(),
        "a link resurrected the session"
    );
    let replay = browser.complete(&callback).unwrap_err();
    assert_eq!(replay.code(), "missing_transaction");
}

/// Another user logged in in this browser meanwhile: the link's answer (for the first user)
/// is not merged into their session.
fn a_link_for_another_user_is_refused<C: Clients>() {
    let fx = Fixture::new::<C>();
    let mut browser = fx.browser();
    browser.login(StartLoginOptions::new());
    let url = browser
        .request(|api, c| api.link(false, LinkUserOptions::new("google-oauth2"), c))
        .expect("start_link_user");
    let callback = follow(&url);
    // Someone else logs in in this browser before the callback arrives.
    let first = fx.emu.user_claims();
    let mut other = first.clone();
    other.insert("sub".into(), "auth0|someone-else".into());
    fx.emu.set_user_claims(other);
    browser.login(StartLoginOptions::new());
    // The link's answer names the first user (who started it); the session is the other's.
    fx.emu.set_user_claims(first);
    let e = browser.complete(&callback).unwrap_err();
    assert_eq!(e.code(), "session_mismatch");
    let session = browser.session().expect("the other user's session stays");
    assert_eq!(session.sub(), Some("auth0|someone-else"));
}

macro_rules! scenarios {
    ($client:ty; $($name:ident),* $(,)?) => {
        $(#[test] fn $name() { super::$name::<$client>() })*
    };
}

macro_rules! all_scenarios {
    ($client:ty) => {
        scenarios!($client;
            link_merges_into_the_same_session,
            unlink_asks_for_unlink_account,
            linking_needs_a_session,
            bad_link_options_are_refused,
            a_link_completed_after_logout_saves_nothing,
            a_link_for_another_user_is_refused,
        );
    };
}

mod blocking {
    all_scenarios!(crate::login_support::Blocking);
}

mod nonblocking {
    all_scenarios!(crate::login_support::Nonblocking);
}
