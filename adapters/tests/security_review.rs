//! Regression tests for defects found by the adversarial review of the stores and of the
//! `Cookie` / `Set-Cookie` handling. Each test names the defect it pins down.

use auth0_server::clock::Clock;
use auth0_server::store::cookie::CookieStateStore;
use auth0_server::store::{CookieOptions, StateStore};
use auth0_server_protocol::session::StateData;

const SECRET: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const NOW: u64 = 1_700_000_000;

/// The `name=value` pairs a browser would send back after these `Set-Cookie` headers.
fn cookie_pairs(response: &CookieOptions) -> Vec<String> {
    response
        .set_cookie_headers()
        .iter()
        .map(|h| h.to_str().unwrap())
        .filter(|h| !h.contains("Max-Age=0"))
        .map(|h| h.split(';').next().unwrap().to_owned())
        .collect()
}

fn request(cookie: &[u8]) -> CookieOptions {
    let mut h = http::HeaderMap::new();
    if !cookie.is_empty() {
        h.insert(
            http::header::COOKIE,
            http::HeaderValue::from_bytes(cookie).unwrap(),
        );
    }
    CookieOptions::from_request_headers(&h)
}

/// Defect: `CookieOptions::from_request_headers` dropped a whole `Cookie` header when any
/// byte of it was not visible ASCII. Browsers send UTF-8 cookie values as they are, so one
/// unrelated cookie (a locale cookie, an analytics cookie, or one planted from a sibling
/// subdomain) made every session and login transaction of the request disappear: the user
/// was logged out on every request and logins failed with `missing_transaction`.
#[test]
fn an_unrelated_non_ascii_cookie_does_not_hide_the_session() {
    let store = CookieStateStore::builder_with_secrets([SECRET])
        .clock(Clock::from_fn(|| NOW))
        .build()
        .unwrap();
    let session: StateData = serde_json::from_str(r#"{"user":{"sub":"auth0|1"}}"#).unwrap();
    let mut response = CookieOptions::new();
    store.set(&session, &mut response).unwrap();
    let pairs = cookie_pairs(&response).join("; ");

    let header = [b"lang=Fran\xc3\xa7ais; ".as_slice(), pairs.as_bytes()].concat();
    let mut opts = request(&header);
    assert_eq!(opts.cookie("lang"), Some("Français"));
    let loaded = store.get(&mut opts).unwrap().expect("the session survives");
    assert_eq!(loaded.sub(), Some("auth0|1"));
    assert!(opts.set_cookie_headers().is_empty(), "nothing is cleared");
}
