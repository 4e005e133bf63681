//! End-to-end: a stateless (cookie) session ends when the user logs out or a back-channel
//! logout names it — a copy of the cookie taken before, and a refresh in flight, cannot
//! bring it back (invariant I2 for cookie sessions). Through the blocking client and the
//! encrypted-cookie store against the emulator; the Redis-shared list is in `redis.rs`.

mod adapter_support;

use adapter_support::{config, expired_session};
use auth0_emulator::{DEFAULT_AUDIENCE, Emulator, Failure, Hook};
use auth0_server::LogoutOptions;
use auth0_server::blocking::ServerClient;
use auth0_server::protocol::session::StateData;
use auth0_server::store::cookie::{CookieStateStore, CookieTransactionStore};
use auth0_server::store::{CookieOptions, StateStore};
use serde_json::Map;
use std::sync::Arc;

type Client = ServerClient<CookieStateStore, CookieTransactionStore>;

fn client(emu: &Emulator) -> Arc<Client> {
    let cfg = config(emu);
    Arc::new(
        ServerClient::builder(
            cfg.clone(),
            CookieStateStore::builder(&cfg)
                .secure(false)
                .build()
                .unwrap(),
            CookieTransactionStore::builder(&cfg)
                .secure(false)
                .build()
                .unwrap(),
        )
        .build(),
    )
}

/// The request a browser sends after receiving `response`'s cookies.
fn browser_request(response: &CookieOptions) -> CookieOptions {
    let pairs: Vec<String> = response
        .cookie_names()
        .into_iter()
        .filter_map(|n| response.cookie(n).map(|v| format!("{n}={v}")))
        .collect();
    let mut h = http::HeaderMap::new();
    h.insert(http::header::COOKIE, pairs.join("; ").parse().unwrap());
    CookieOptions::from_request_headers(&h)
}

/// A logged-in browser: the session written as cookies, and the request carrying them.
fn logged_in(client: &Client, state: &StateData) -> CookieOptions {
    let mut o = CookieOptions::new();
    client
        .state_store()
        .set(state, &mut o, auth0_server::clock::Clock::system().now())
        .unwrap();
    browser_request(&o)
}

#[test]
fn a_cookie_copied_before_logout_does_not_log_in_afterwards() {
    let emu = Emulator::start(Default::default());
    let client = client(&emu);
    let request = logged_in(&client, &expired_session(&emu, DEFAULT_AUDIENCE));
    let copy = request.clone();
    assert!(client.get_session(&mut copy.clone()).unwrap().is_some());
    client
        .logout(LogoutOptions::default(), &mut request.clone())
        .unwrap();
    assert!(
        client.get_session(&mut copy.clone()).unwrap().is_none(),
        "the copied cookie still logs in after logout"
    );
    let e = client.get_access_token(&mut copy.clone()).unwrap_err();
    assert_eq!(e.code(), "missing_session");
    assert!(
        emu.token_requests().is_empty(),
        "the ended session refreshed"
    );
}

#[test]
fn back_channel_logout_ends_a_cookie_session() {
    let emu = Emulator::start(Default::default());
    let client = client(&emu);
    let mut ended = expired_session(&emu, DEFAULT_AUDIENCE);
    ended.internal.sid = "sid-ended".into();
    let mut kept = expired_session(&emu, DEFAULT_AUDIENCE);
    kept.internal.sid = "sid-kept".into();
    let ended = logged_in(&client, &ended);
    let kept = logged_in(&client, &kept);
    let token = emu.mint_logout_token(None, Some("sid-ended"), Map::new());
    client
        .handle_backchannel_logout(&token, &mut CookieOptions::new())
        .expect("a cookie session can be ended from the back channel");
    assert!(client.get_session(&mut ended.clone()).unwrap().is_none());
    assert!(client.get_session(&mut kept.clone()).unwrap().is_some());
}

#[test]
fn a_logout_during_a_refresh_is_not_undone_by_its_cookie() {
    let emu = Emulator::start(Default::default());
    let client = client(&emu);
    let request = logged_in(&client, &expired_session(&emu, DEFAULT_AUDIENCE));
    let (c, o) = (client.clone(), request.clone());
    emu.fail_next(
        "/oauth/token",
        Failure::Before(Hook::new(move || {
            c.logout(LogoutOptions::default(), &mut o.clone()).unwrap();
        })),
        1,
    );
    let mut during = request.clone();
    let e = client.get_access_token(&mut during).unwrap_err();
    assert_eq!(e.code(), "missing_session", "{e}");
    // Whatever the refresh's response carries, the browser holds no session afterwards.
    let next = browser_request(&during);
    assert!(client.get_session(&mut next.clone()).unwrap().is_none());
    assert!(client.get_session(&mut request.clone()).unwrap().is_none());
}
