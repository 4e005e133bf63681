//! Regression tests for defects found by the adversarial review of the stores and of the
//! `Cookie` / `Set-Cookie` handling. Each test names the defect it pins down.

use auth0_server::store::cookie::CookieStateStore;
use auth0_server::store::memory::MemoryTransactionStore;
use auth0_server::store::{CookieOptions, StateStore, TransactionStore};
use auth0_server_protocol::session::StateData;
use auth0_server_protocol::transaction::TransactionData;

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
        .build()
        .unwrap();
    let session: StateData = serde_json::from_str(r#"{"user":{"sub":"auth0|1"}}"#).unwrap();
    let mut response = CookieOptions::new();
    store
        .set(
            &session,
            &mut response,
            auth0_server::protocol::time::UnixTime::from_secs(NOW),
        )
        .unwrap();
    let pairs = cookie_pairs(&response).join("; ");

    let header = [b"lang=Fran\xc3\xa7ais; ".as_slice(), pairs.as_bytes()].concat();
    let mut opts = request(&header);
    assert_eq!(opts.cookie("lang"), Some("Français"));
    let loaded = store
        .get(
            &mut opts,
            auth0_server::protocol::time::UnixTime::from_secs(NOW),
        )
        .unwrap()
        .expect("the session survives");
    assert_eq!(loaded.sub(), Some("auth0|1"));
    assert!(opts.set_cookie_headers().is_empty(), "nothing is cleared");
}

/// Defect: `MemoryTransactionStore` kept transactions by `state` alone, not bound to the
/// browser that started the login. An attacker could start a login, stop at the callback and
/// send the victim the callback URL: the victim's browser completed the login as the attacker
/// (login CSRF / session swap, RFC 6749 §10.12) — the very attack `state` exists to stop.
/// The Redis and cookie transaction stores bind the transaction to the browser; the memory
/// store now does too, with a random value in a cookie named after the transaction key.
#[test]
fn memory_transactions_are_bound_to_the_browser_that_started_the_login() {
    let store = MemoryTransactionStore::new();
    let key = "_a0_tx.st4te";
    let tx = TransactionData {
        state: Some("st4te".into()),
        ..Default::default()
    };
    let mut victim_started = CookieOptions::new();
    store
        .set(
            key,
            &tx,
            &mut victim_started,
            auth0_server::protocol::time::UnixTime::from_secs(NOW),
        )
        .unwrap();
    let set_cookie = victim_started.set_cookie_headers()[0].to_str().unwrap();
    assert!(set_cookie.starts_with("_a0_tx.st4te="), "{set_cookie}");
    assert!(
        set_cookie.contains("HttpOnly")
            && set_cookie.contains("Secure")
            && set_cookie.contains("SameSite=Lax")
            && set_cookie.contains("Path=/")
            && set_cookie.contains("Max-Age=3600"),
        "{set_cookie}"
    );

    // Another browser (no cookie, or a guessed one) finds nothing.
    assert_eq!(
        store
            .get(
                key,
                &mut CookieOptions::new(),
                auth0_server::protocol::time::UnixTime::from_secs(NOW)
            )
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .get(
                key,
                &mut request(b"_a0_tx.st4te=guess"),
                auth0_server::protocol::time::UnixTime::from_secs(NOW)
            )
            .unwrap(),
        None
    );

    // The browser that started the login finds its transaction.
    let pairs = cookie_pairs(&victim_started).join("; ");
    let mut same_browser = request(pairs.as_bytes());
    let got = store
        .get(
            key,
            &mut same_browser,
            auth0_server::protocol::time::UnixTime::from_secs(NOW),
        )
        .unwrap()
        .expect("bound");
    assert_eq!(got.state.as_deref(), Some("st4te"));

    // Deleting it clears the binding cookie too.
    store
        .delete(
            key,
            &mut same_browser,
            auth0_server::protocol::time::UnixTime::from_secs(NOW),
        )
        .unwrap();
    assert!(
        same_browser
            .set_cookie_headers()
            .iter()
            .any(|h| h.to_str().unwrap().starts_with("_a0_tx.st4te=; Max-Age=0"))
    );
    let mut replay = request(pairs.as_bytes());
    assert_eq!(
        store
            .get(
                key,
                &mut replay,
                auth0_server::protocol::time::UnixTime::from_secs(NOW)
            )
            .unwrap(),
        None
    );
}
